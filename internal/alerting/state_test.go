package alerting

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

var stale = []Sample{{Labels: map[string]string{"workflow": "claims-triage", "source": "policy-db"}, Value: 400}}

func TestPendingThenFiringAfterFor(t *testing.T) {
	m := NewMachine(30*time.Second, 0)
	tr := m.Eval(at(0), stale)
	require.Len(t, tr, 1)
	assert.Equal(t, StatePending, tr[0].Alert.State)
	assert.Equal(t, at(0), tr[0].Alert.ActiveAt)

	assert.Empty(t, m.Eval(at(15), stale), "still pending")
	tr = m.Eval(at(30), stale)
	require.Len(t, tr, 1)
	assert.Equal(t, StateFiring, tr[0].Alert.State)
	assert.Equal(t, StatePending, tr[0].From)
	assert.Equal(t, at(0), tr[0].Alert.ActiveAt)
	assert.Equal(t, at(30), tr[0].Alert.FiredAt)
	assert.Empty(t, m.Eval(at(45), stale), "firing stays firing without a new transition")
}

func TestZeroForFiresAtOnce(t *testing.T) {
	m := NewMachine(0, 0)
	tr := m.Eval(at(0), stale)
	require.Len(t, tr, 2)
	assert.Equal(t, StatePending, tr[0].Alert.State)
	assert.Equal(t, StateFiring, tr[1].Alert.State)
}

func TestPendingThatClearsLeavesQuietly(t *testing.T) {
	m := NewMachine(time.Minute, 0)
	m.Eval(at(0), stale)
	assert.Empty(t, m.Eval(at(10), nil))
	assert.Empty(t, m.Active())
}

func TestResolvedThenRetainedThenForgotten(t *testing.T) {
	m := NewMachine(0, 0)
	m.Eval(at(0), stale)
	tr := m.Eval(at(60), nil)
	require.Len(t, tr, 1)
	assert.True(t, tr[0].Resolved)
	assert.Equal(t, StateInactive, tr[0].Alert.State)
	assert.Equal(t, at(60), tr[0].Alert.ResolvedAt)
	assert.Equal(t, at(0), tr[0].Alert.FiredAt)
	require.Len(t, m.Active(), 1, "kept so the resolve is delivered")

	m.Eval(at(60).Add(ResolvedRetention), nil)
	assert.Empty(t, m.Active())
}

func TestKeepFiringForStopsFlappingAroundANoisyThreshold(t *testing.T) {
	m := NewMachine(0, 2*time.Minute)
	m.Eval(at(0), stale)
	// The condition flickers off and on every round.
	for s := 15; s <= 300; s += 15 {
		var samples []Sample
		if (s/15)%2 == 0 {
			samples = stale
		}
		assert.Empty(t, m.Eval(at(s), samples), "no transition at %ds", s)
	}
	// It stays off: resolved only once keep_firing_for has passed.
	assert.Empty(t, m.Eval(at(315), nil))
	assert.Empty(t, m.Eval(at(420), nil))
	tr := m.Eval(at(435), nil)
	require.Len(t, tr, 1)
	assert.True(t, tr[0].Resolved)
}

func TestReactivationStartsANewEpisode(t *testing.T) {
	m := NewMachine(0, 0)
	m.Eval(at(0), stale)
	m.Eval(at(60), nil)
	tr := m.Eval(at(120), stale)
	require.Len(t, tr, 2)
	assert.Equal(t, at(120), tr[1].Alert.ActiveAt)
	assert.Equal(t, at(120), tr[1].Alert.FiredAt)
	assert.True(t, tr[1].Alert.ResolvedAt.IsZero())
}

func TestRestoreNeitherRefiresNorForgets(t *testing.T) {
	m := NewMachine(30*time.Second, 0)
	m.Eval(at(0), stale)
	m.Eval(at(30), stale)
	snapshot := m.Active()

	restarted := NewMachine(30*time.Second, 0)
	restarted.Restore(snapshot)
	assert.Empty(t, restarted.Eval(at(45), stale), "no second pending or firing after a restart")
	a := restarted.Active()[0]
	assert.Equal(t, at(30), a.FiredAt)
	tr := restarted.Eval(at(60), nil)
	require.Len(t, tr, 1)
	assert.True(t, tr[0].Resolved, "and a resolve still happens")
}

func TestFingerprintIgnoresOrderButNotValues(t *testing.T) {
	a := Fingerprint(map[string]string{"a": "1", "b": "2"})
	assert.Equal(t, a, Fingerprint(map[string]string{"b": "2", "a": "1"}))
	assert.NotEqual(t, a, Fingerprint(map[string]string{"a": "1", "b": "3"}))
	assert.NotEqual(t, Fingerprint(map[string]string{"a": "1b", "": "2"}), Fingerprint(map[string]string{"a": "1", "b": "2"}))
}
