package smudge

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/internal/swim"
)

func TestLifeguardFromEnv(t *testing.T) {
	c, err := configFromLookup(mapLookup(nil))
	require.NoError(t, err)
	assert.Equal(t, LifeguardConfig{}, c.Lifeguard, "all on by default")

	c, err = configFromLookup(mapLookup(map[string]string{EnvVarLifeguard: "false", EnvVarSuspicionMinMult: "2.5"}))
	require.NoError(t, err)
	assert.Equal(t, LifeguardConfig{SuspicionMinMult: 2.5, SuspicionChecks: -1, DisableLocalHealth: true,
		DisableNacks: true, DisableDynamicSuspicion: true, DisableBuddy: true}, c.Lifeguard)

	for v, want := range map[string]string{"maybe": "not a boolean"} {
		_, err := configFromLookup(mapLookup(map[string]string{EnvVarLifeguard: v}))
		assert.ErrorContains(t, err, EnvVarLifeguard+`="`+v+`": `+want)
	}
	for v, want := range map[string]string{"fast": "not a number", "NaN": "not a number", "-1": "negative", "+Inf": "not a number"} {
		_, err := configFromLookup(mapLookup(map[string]string{EnvVarSuspicionMinMult: v}))
		assert.ErrorContains(t, err, EnvVarSuspicionMinMult+`="`+v+`": `+want)
	}
}

func TestLifeguardValidateAndApply(t *testing.T) {
	c := DefaultConfig()
	c.Lifeguard = LifeguardConfig{SuspicionMinMult: -1, SuspicionConfirmations: 8, MaxLocalHealth: 65}
	err := c.Validate()
	assert.ErrorContains(t, err, "Lifeguard.SuspicionMinMult (SMUDGE_SUSPICION_MIN_MULT) = -1")
	assert.ErrorContains(t, err, "Lifeguard.SuspicionConfirmations = 8: out of range 0-7")
	assert.ErrorContains(t, err, "Lifeguard.MaxLocalHealth = 65: out of range 0-64")

	var e swim.Config
	LifeguardConfig{SuspicionMinMult: 2, SuspicionConfirmations: 4, SuspicionChecks: 5, MaxLocalHealth: 6, DisableNacks: true}.apply(&e)
	assert.Equal(t, 2.0, e.SuspicionMinMult)
	assert.Equal(t, 4, e.SuspicionConfirmations)
	assert.Equal(t, 5, e.SuspicionChecks)
	assert.Equal(t, 6, e.MaxLocalHealth)
	assert.True(t, e.NoNacks)
	assert.False(t, e.NoLocalHealth || e.NoDynamicSuspicion || e.NoBuddy)
}
