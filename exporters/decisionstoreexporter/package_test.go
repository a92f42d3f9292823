package decisionstoreexporter

import (
	"testing"

	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

// The embedded ClickHouse the integration tests use is this test binary,
// re-executed; testenv.Main serves it when asked to.
func TestMain(m *testing.M) { testenv.Main(m) }
