package install

import (
	"fmt"
	"strings"
)

// templater turns an object into a Helm template: the caller puts placeholder tokens into the
// object where values go, the object is marshalled as YAML like any other, and render swaps each
// token for Go-template text at the indentation the marshaller chose. So the chart's templates are
// the kustomize objects byte for byte except where a value is wired in.
type templater struct {
	inline map[string]string           // token → expression, replaced inside a line
	blocks map[string]string           // token → expression of a YAML value placed under its key
	lines  map[string]func(int) string // token (a map key) → whole lines at that key's indent
	n      int
}

func newTemplater() *templater {
	return &templater{inline: map[string]string{}, blocks: map[string]string{}, lines: map[string]func(int) string{}}
}

func (t *templater) token(kind string) string {
	t.n++
	return fmt.Sprintf("__helm_%s_%d__", kind, t.n)
}

// value is a scalar placeholder rendered as {{ expr }}.
func (t *templater) value(expr string) string {
	tok := t.token("v")
	t.inline[tok] = "{{ " + expr + " }}"
	return tok
}

// block is a placeholder for a whole YAML value: the key stays and expr's value is written under it
// with toYaml.
func (t *templater) block(expr string) string {
	tok := t.token("b")
	t.blocks[tok] = expr
	return tok
}

// lineKey is a placeholder map key whose line is replaced by text(indent), indent being the
// column of the key.
func (t *templater) lineKey(text func(indent int) string) string {
	tok := t.token("l")
	t.lines[tok] = text
	return tok
}

// withBlock is a lineKey that writes `key: <toYaml expr>` only when expr is not empty.
func (t *templater) withBlock(key, expr string) string {
	return t.lineKey(func(indent int) string {
		pad := strings.Repeat(" ", indent)
		return fmt.Sprintf("{{- with %s }}\n%s%s:\n%s  {{- toYaml . | nindent %d }}\n{{- end }}", expr, pad, key, pad, indent+2)
	})
}

// render marshals obj and replaces every token; a token left over is an error.
func (t *templater) render(obj any) (string, error) {
	b, err := marshal(obj)
	if err != nil {
		return "", err
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		out = append(out, t.renderLine(line))
	}
	s := strings.Join(out, "\n") + "\n"
	if i := strings.Index(s, "__helm_"); i >= 0 {
		return "", fmt.Errorf("template placeholder left in %q", s[i:min(len(s), i+40)])
	}
	return s, nil
}

func (t *templater) renderLine(line string) string {
	trimmed := strings.TrimLeft(line, " ")
	indent := len(line) - len(trimmed)
	if strings.HasPrefix(trimmed, "- ") {
		trimmed, indent = trimmed[2:], indent+2
	}
	key, val, hasColon := strings.Cut(trimmed, ": ")
	if hasColon {
		if text, ok := t.lines[key]; ok {
			return text(indent)
		}
		if expr, ok := t.blocks[val]; ok {
			return fmt.Sprintf("%s%s:\n%s  {{- toYaml %s | nindent %d }}", line[:len(line)-len(trimmed)], key, strings.Repeat(" ", indent), expr, indent+2)
		}
	}
	for tok, text := range t.inline {
		line = strings.ReplaceAll(line, tok, text)
	}
	return line
}
