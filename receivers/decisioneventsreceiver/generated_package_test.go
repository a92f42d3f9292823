// Written in mdatagen's generated layout (mdatagen is not served by the
// module proxy this project builds from).

package decisioneventsreceiver

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
