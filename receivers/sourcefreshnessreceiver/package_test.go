package sourcefreshnessreceiver

import (
	"testing"

	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

// The embedded ClickHouse the clickhouse-kind test polls is this test binary,
// re-executed; testenv.Main serves it when asked to. That is also why leaks
// are checked per test (goleak.VerifyNone) rather than by goleak's TestMain.
func TestMain(m *testing.M) { testenv.Main(m) }
