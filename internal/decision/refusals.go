package decision

import (
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Refusals collects the records of one request that cannot be taken, for
// one error that says where each is: a request of a million records gets a
// readable answer naming the first few and counting the rest.
type Refusals struct {
	named []string
	more  int
}

// maxNamed is how many refused records an error names.
const maxNamed = 5

// Add records one refused record, where it is and what is wrong with it.
func (r *Refusals) Add(format string, args ...any) {
	if len(r.named) < maxNamed {
		r.named = append(r.named, fmt.Sprintf(format, args...))
		return
	}
	r.more++
}

// Len is how many records were refused.
func (r *Refusals) Len() int { return len(r.named) + r.more }

// Err is nil when nothing was refused, else one error naming the records
// and then why: permanent (resending the same request cannot help), and
// InvalidArgument, which the OTLP receiver answers as gRPC InvalidArgument
// and HTTP 400 with the message, where a bare permanent error would be
// Internal and 500.
func (r *Refusals) Err(why string) error {
	if r.Len() == 0 {
		return nil
	}
	msg := strings.Join(r.named, "; ")
	if r.more > 0 {
		msg += fmt.Sprintf("; and %d more", r.more)
	}
	return consumererror.NewPermanent(status.Error(codes.InvalidArgument, msg+": "+why))
}
