package payrouter

import _ "embed"

// OpenAPI is the API v1 description, served at /openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
