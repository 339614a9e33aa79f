package payrouter

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"gopkg.in/yaml.v3"
)

// routePattern matches the ServeMux registrations in httpapi.Server.Handler:
// mux.HandleFunc("POST /v1/payments", …) and mux.Handle("GET /metrics", …).
var routePattern = regexp.MustCompile(`mux\.Handle(?:Func)?\("([A-Z]+) (/[^"]*)"`)

// openAPIMethods are the operation keys of an OpenAPI path item.
var openAPIMethods = map[string]bool{
	"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true,
}

type openAPIDoc struct {
	OpenAPI string                    `yaml:"openapi"`
	Paths   map[string]map[string]any `yaml:"paths"`
}

func loadOpenAPI(tb testing.TB) (openAPIDoc, map[string]any) {
	tb.Helper()
	var doc openAPIDoc
	if err := yaml.Unmarshal(OpenAPI, &doc); err != nil {
		tb.Fatalf("openapi.yaml does not parse: %v", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(OpenAPI, &raw); err != nil {
		tb.Fatalf("openapi.yaml does not parse: %v", err)
	}
	return doc, raw
}

// registeredRoutes reads the routes from the Go source, so a route added to
// the server without being described fails this test.
func registeredRoutes(tb testing.TB) []route {
	tb.Helper()
	src, err := os.ReadFile(filepath.Join("internal", "httpapi", "server.go"))
	if err != nil {
		tb.Fatalf("read server.go: %v", err)
	}
	var out []route
	for _, m := range routePattern.FindAllStringSubmatch(string(src), -1) {
		out = append(out, route{method: strings.ToLower(m[1]), path: specPath(m[2])})
	}
	return out
}

type route struct{ method, path string }

func (r route) String() string { return strings.ToUpper(r.method) + " " + r.path }

// specPath converts a ServeMux pattern to an OpenAPI path: "{name...}" is
// "{name}" and the end anchor "{$}" has no OpenAPI counterpart.
func specPath(p string) string {
	p = strings.ReplaceAll(p, "{$}", "")
	return strings.ReplaceAll(p, "...}", "}")
}

func TestSpecPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/v1/payments/{id}", "/v1/payments/{id}"},
		{"/files/{rest...}", "/files/{rest}"},
		{"/{$}", "/"},
	}
	for _, tt := range tests {
		if got := specPath(tt.in); got != tt.want {
			t.Errorf("specPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestOpenAPIVersion(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
}

func TestOpenAPICoversEveryRoute(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	routes := registeredRoutes(t)
	// Guard against a regexp that silently stops matching: the server has
	// at least the fixed routes of API v1 (docs/architecture.md).
	if len(routes) < 12 {
		t.Fatalf("found %d routes in server.go, want at least 12: did the registration style change? %v", len(routes), routes)
	}
	for _, r := range routes {
		t.Run(r.String(), func(t *testing.T) {
			item, ok := doc.Paths[r.path]
			if !ok {
				t.Fatalf("paths has no %q", r.path)
			}
			if _, ok := item[r.method]; !ok {
				t.Errorf("paths[%q] has no %s operation", r.path, r.method)
			}
		})
	}
}

// TestOpenAPIHasNoPhantomRoutes is the other direction: the spec describes
// nothing the server does not serve.
func TestOpenAPIHasNoPhantomRoutes(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	served := map[route]bool{}
	for _, r := range registeredRoutes(t) {
		served[r] = true
	}
	for path, item := range doc.Paths {
		for method := range item {
			if !openAPIMethods[method] {
				continue // parameters, summary, …
			}
			if r := (route{method, path}); !served[r] {
				t.Errorf("spec describes %s, which server.go does not register", r)
			}
		}
	}
}

// TestOpenAPIRefsResolve checks every local $ref points at something, so a
// renamed schema cannot leave a dangling reference.
func TestOpenAPIRefsResolve(t *testing.T) {
	_, raw := loadOpenAPI(t)
	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "$ref" {
					refs = append(refs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(raw)
	if len(refs) == 0 {
		t.Fatal("found no $ref at all; the walk is broken")
	}
	sort.Strings(refs)
	for _, ref := range refs {
		if err := resolvePointer(raw, ref); err != "" {
			t.Errorf("$ref %q: %s", ref, err)
		}
	}
}

// resolvePointer follows a local JSON pointer ("#/a/b") through raw and
// returns why it fails, or "".
func resolvePointer(raw map[string]any, ref string) string {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return "not a local reference"
	}
	var cur any = raw
	for _, tok := range strings.Split(rest, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[tok]
			if !ok {
				return "no " + strconv.Quote(tok)
			}
			cur = next
		default:
			return "cannot descend into " + strconv.Quote(tok)
		}
	}
	return ""
}

// TestOpenAPIPathParams checks every {param} in a path is declared as a path
// parameter, at path or operation level.
func TestOpenAPIPathParams(t *testing.T) {
	_, raw := loadOpenAPI(t)
	paths, _ := raw["paths"].(map[string]any)
	components, _ := raw["components"].(map[string]any)
	shared, _ := components["parameters"].(map[string]any)
	brace := regexp.MustCompile(`\{([^}]+)\}`)
	declared := func(list any) map[string]bool {
		out := map[string]bool{}
		ps, _ := list.([]any)
		for _, p := range ps {
			m, _ := p.(map[string]any)
			if ref, ok := m["$ref"].(string); ok {
				m, _ = shared[strings.TrimPrefix(ref, "#/components/parameters/")].(map[string]any)
			}
			if m["in"] == "path" {
				name, _ := m["name"].(string)
				out[name] = true
			}
		}
		return out
	}
	for path, v := range paths {
		item, _ := v.(map[string]any)
		atPath := declared(item["parameters"])
		for method, op := range item {
			if !openAPIMethods[method] {
				continue
			}
			o, _ := op.(map[string]any)
			atOp := declared(o["parameters"])
			for _, m := range brace.FindAllStringSubmatch(path, -1) {
				if !atPath[m[1]] && !atOp[m[1]] {
					t.Errorf("%s %s: path parameter %q is not declared", strings.ToUpper(method), path, m[1])
				}
			}
		}
	}
}

// TestOpenAPILint loads the spec with a maintained OpenAPI 3.1 validator
// (kin-openapi), examples checked against their schemas: YAML that parses
// into something else than was meant (an unquoted ", " in a flow mapping
// adds a key) fails here.
func TestOpenAPILint(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation(), openapi3.EnableMultiError()); err != nil {
		t.Fatal(err)
	}
}
