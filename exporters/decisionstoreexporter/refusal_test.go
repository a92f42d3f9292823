package decisionstoreexporter

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestFullQueueIsARetryableRefusalWithADelay(t *testing.T) {
	st, ok := status.FromError(refusal(fmt.Errorf("enqueue: %w", exporterhelper.ErrQueueIsFull)))
	require.True(t, ok)
	assert.Equal(t, codes.Unavailable, st.Code())
	require.Len(t, st.Details(), 1)
	assert.Equal(t, 5*time.Second, st.Details()[0].(*errdetails.RetryInfo).GetRetryDelay().AsDuration())

	other := errors.New("something else")
	assert.Same(t, other, refusal(other), "other errors pass unchanged")
	assert.NoError(t, refusal(nil))
}
