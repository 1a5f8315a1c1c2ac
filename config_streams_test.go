package smudge

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStreamSettingsFromEnv(t *testing.T) {
	env := map[string]string{
		EnvVarMaxMessageBytes: "65536", EnvVarGossipGroup: "7", EnvVarPublishTTL: "90s", EnvVarStateDir: "/var/lib/smudge",
	}
	cfg, err := configFromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)
	assert.Equal(t, 65536, cfg.MaxMessageBytes)
	assert.Equal(t, 7, cfg.GossipGroup)
	assert.Equal(t, 90*time.Second, cfg.PublishTTL)
	assert.Equal(t, "/var/lib/smudge", cfg.StateDir)

	def := DefaultConfig()
	assert.Equal(t, DefaultMaxMessageBytes, def.MaxMessageBytes)
	assert.Equal(t, 1<<20, def.MaxMessageBytes)
	assert.Equal(t, 5, def.GossipGroup)
	assert.Equal(t, 10*time.Minute, def.PublishTTL)
	assert.Empty(t, def.StateDir)

	for name, v := range map[string]string{
		EnvVarMaxMessageBytes: "100", EnvVarGossipGroup: "65", EnvVarPublishTTL: "48h",
	} {
		_, err := configFromLookup(func(k string) (string, bool) {
			if k == name {
				return v, true
			}
			return "", false
		})
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), name)
		assert.Contains(t, err.Error(), v)
	}
	_, err = configFromLookup(func(k string) (string, bool) {
		if k == EnvVarPublishTTL {
			return "soon", true
		}
		return "", false
	})
	assert.ErrorContains(t, err, "not a duration")
}

func TestStreamSettingsValidateAndDefault(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxMessageBytes, cfg.GossipGroup, cfg.PublishTTL = 0, 0, 0
	require.NoError(t, cfg.Validate(), "0 means the default")
	c, err := New(cfg)
	require.NoError(t, err)
	got := c.Config()
	assert.Equal(t, DefaultMaxMessageBytes, got.MaxMessageBytes)
	assert.Equal(t, DefaultGossipGroup, got.GossipGroup)
	assert.Equal(t, DefaultPublishTTL, got.PublishTTL)
	assert.Equal(t, DefaultMaxInboundStreams, got.Limits.MaxInboundStreams)
	assert.Equal(t, DefaultStreamTimeout, got.Limits.StreamTimeout)

	cfg.MaxMessageBytes, cfg.GossipGroup, cfg.PublishTTL = 10, -1, time.Millisecond
	err = cfg.Validate()
	require.Error(t, err)
	for _, s := range []string{"MaxMessageBytes (SMUDGE_MAX_MESSAGE_BYTES)", "GossipGroup (SMUDGE_GOSSIP_GROUP)", "PublishTTL (SMUDGE_PUBLISH_TTL)"} {
		assert.Contains(t, err.Error(), s)
	}
}
