// Package strictyaml decodes the YAML files people write by hand
// (contracts, rule files): an unknown or misspelled field is an error, and
// every problem is reported with the file's name, one per line.
package strictyaml

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Decode decodes b into out; name is used in messages.
func Decode(name string, b []byte, out any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	err := dec.Decode(out)
	if err == nil {
		// A second document (contracts or rule groups after "---") would
		// otherwise be dropped without a word; one that does not parse is
		// reported as the first would be.
		var next yaml.Node
		switch err = dec.Decode(&next); {
		case errors.Is(err, io.EOF):
			return nil
		case err == nil && (len(next.Content) == 0 || next.Content[0].ShortTag() == "!!null"):
			return nil // a trailing "---" with nothing after it
		case err == nil:
			return fmt.Errorf("%s: line %d: a second YAML document; a file holds one (put each in a file of its own)", name, next.Content[0].Line)
		}
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		errs := make([]error, len(te.Errors))
		for i, e := range te.Errors {
			errs[i] = fmt.Errorf("%s: %s", name, e)
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
}
