//go:build !race

package api

// echoBytes is how much TestStreamEchoBothWays sends each way, and
// resumeCuts how often TestStreamClientAckResume cuts its stream.
const (
	echoBytes  = 64 << 20
	resumeCuts = 200
)
