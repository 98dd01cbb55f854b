package modules_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
	"unicode"
)

// Every Go snippet of the README is compiled: each ```go block follows a
// line <!-- compiled: NAME --> naming a function of readme_test.go, and
// shows that function (a block that begins with "func") or its body, as
// written there, whitespace aside. A snippet that drifts from the code
// fails here.
func TestReadmeSnippets(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const file = "readme_test.go"
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	funcs := map[string]*ast.FuncDecl{}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok {
			funcs[fd.Name.Name] = fd
		}
	}
	text := func(from, to token.Pos) string {
		return string(src[fset.Position(from).Offset:fset.Position(to).Offset])
	}

	lines := strings.Split(string(readme), "\n")
	blocks := 0
	for i := 0; i < len(lines); i++ {
		if lines[i] != "```go" {
			continue
		}
		blocks++
		start := i + 1
		for i++; i < len(lines) && lines[i] != "```"; i++ {
		}
		block := strings.Join(lines[start:i], "\n")
		marker := ""
		if start >= 2 {
			marker = lines[start-2]
		}
		name, ok := strings.CutPrefix(marker, "<!-- compiled: ")
		name, ok2 := strings.CutSuffix(name, " -->")
		if !ok || !ok2 {
			t.Errorf("README line %d: a Go snippet without <!-- compiled: NAME --> before it:\n%s", start, block)
			continue
		}
		fd := funcs[name]
		if fd == nil {
			t.Errorf("README line %d: no function %s in %s", start, name, file)
			continue
		}
		want := text(fd.Pos(), fd.End())
		if !strings.HasPrefix(strings.TrimSpace(block), "func ") {
			want = text(fd.Body.Lbrace+1, fd.Body.Rbrace)
		}
		if squash(block) != squash(want) {
			t.Errorf("README line %d: the snippet differs from %s in %s; the code:\n%s", start, name, file, want)
		}
	}
	if blocks == 0 {
		t.Error("no Go snippet in the README")
	}
}

// squash drops all white space.
func squash(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}
