// Package sockman holds what the whole module shares: the generated OpenAPI
// document, embedded so that the binary serves the description it was built
// from.
package sockman

import _ "embed"

// OpenAPI is openapi.yaml, generated from the swag annotations in api/.
//
//go:embed openapi.yaml
var OpenAPI []byte

//go:generate go tool swag init --quiet --generalInfo server.go --dir ./api --output ./docs --outputTypes json,yaml --requiredByDefault
//go:generate go run ./internal/openapigen -in docs/swagger.json -out openapi.yaml

// The Go client is generated from openapi.yaml, so right after it, here
// rather than in client/ (go generate runs the directives of one package in
// order, and packages in an order it does not promise).
//
//go:generate go tool oapi-codegen -config client/oapi-codegen.yaml openapi.yaml
