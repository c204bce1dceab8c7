package api

import (
	"bytes"
	"testing"
)

func TestMessageBytes(t *testing.T) {
	want := []byte("hi\x00\xff")
	for _, m := range []Message{
		{Encoding: "utf8", Data: "hi\x00\xff"},
		{Encoding: "base64", Data: "aGkA/w=="},
		{Encoding: "hex", Data: "6869" + "00ff"},
	} {
		got, err := m.Bytes()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s %q: got %q, %v; want %q, nil", m.Encoding, m.Data, got, err, want)
		}
	}
	for _, m := range []Message{
		{Encoding: "", Data: "hi"},
		{Encoding: "utf16", Data: "hi"},
		{Encoding: "base64", Data: "aGk"},
		{Encoding: "hex", Data: "6g"},
	} {
		if got, err := m.Bytes(); err == nil {
			t.Fatalf("%q %q: got %q, nil; want an error", m.Encoding, m.Data, got)
		}
	}
}
