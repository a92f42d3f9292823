package chconn

import (
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOptions(t *testing.T) {
	opts, err := Options(Settings{Endpoint: "clickhouses://u:dsnpass@ch.example:9440/otherdb", Password: "envpass", DialTimeout: 3 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, []string{"ch.example:9440"}, opts.Addr)
	assert.Equal(t, "u", opts.Auth.Username, "the DSN's user stays when none is given separately")
	assert.Equal(t, "envpass", opts.Auth.Password, "a separate password wins over the DSN's")
	assert.Empty(t, opts.Auth.Database)
	assert.NotNil(t, opts.TLS, "clickhouses:// means TLS")
	assert.Equal(t, 3*time.Second, opts.DialTimeout)
	assert.Equal(t, clickhouse.CompressionLZ4, opts.Compression.Method)

	opts, err = Options(Settings{Endpoint: "tcp://127.0.0.1:9000?compress=zstd"})
	require.NoError(t, err)
	assert.Nil(t, opts.TLS)
	assert.Equal(t, clickhouse.CompressionZSTD, opts.Compression.Method)
}

func TestValidateEndpointAndRedact(t *testing.T) {
	assert.NoError(t, ValidateEndpoint("clickhouse://h:9000"))
	assert.EqualError(t, ValidateEndpoint(""), "must be set, e.g. clickhouse://127.0.0.1:9000")
	assert.EqualError(t, ValidateEndpoint("mysql://h"), `scheme "mysql" is not one of clickhouse, clickhouses, tcp, http, https`)
	assert.Equal(t, "clickhouse://u:xxxxx@h:9000", Redact("clickhouse://u:secret@h:9000"))
	assert.True(t, Identifier("decisiontrace"))
	assert.False(t, Identifier("dt-prod"))
	assert.False(t, Identifier("x; DROP TABLE y"))
}
