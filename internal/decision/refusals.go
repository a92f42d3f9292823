package decision

import (
	"fmt"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Refusals collects the records of one request that cannot be taken, for
// one error that says where each is: a request of a million records gets a
// readable answer naming the first few and counting the rest.
type Refusals struct {
	named   []string
	records []Refused
}

// Refused is one refused record: where it is in its request, and what is
// wrong with it.
type Refused struct {
	Where  Where
	Reason string
}

// maxNamed is how many refused records an error names.
const maxNamed = 5

// Add records one refused record, where it is and what is wrong with it.
func (r *Refusals) Add(w Where, format string, args ...any) {
	reason := fmt.Sprintf(format, args...)
	r.records = append(r.records, Refused{Where: w, Reason: reason})
	if len(r.named) < maxNamed {
		r.named = append(r.named, w.String()+": "+reason)
	}
}

// Len is how many records were refused.
func (r *Refusals) Len() int { return len(r.records) }

// Err is nil when nothing was refused, else one error naming the records
// and then why: permanent (resending the same request cannot help), and
// InvalidArgument, which the OTLP receiver answers as gRPC InvalidArgument
// and HTTP 400 with the message, where a bare permanent error would be
// Internal and 500. It is a *RefusedError, which lists every record.
func (r *Refusals) Err(why string) error {
	if r.Len() == 0 {
		return nil
	}
	msg := strings.Join(r.named, "; ")
	if more := r.Len() - len(r.named); more > 0 {
		msg += fmt.Sprintf("; and %d more", more)
	}
	return consumererror.NewPermanent(&RefusedError{
		status:  status.Error(codes.InvalidArgument, msg+": "+why),
		Records: slices.Clone(r.records),
	})
}

// RefusedError is a refusal of the records it lists, and of nothing else
// in their request: a receiver that knows where each of its records came
// from (the decision-events endpoint) names them in its client's terms and
// sends the rest on. OTLP cannot take part of a request; its receiver
// answers with the status this wraps.
type RefusedError struct {
	status  error
	Records []Refused
}

func (e *RefusedError) Error() string { return e.status.Error() }

// Unwrap gives the gRPC status, which the OTLP receiver answers with.
func (e *RefusedError) Unwrap() error { return e.status }
