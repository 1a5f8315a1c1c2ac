package smudge

import (
	"fmt"
	"strings"
	"time"

	"github.com/seed-c7906467/smudge/internal/swim"
)

const (
	// EnvVarPushPullInterval sets, as a Go duration such as "30s", the time
	// between two push-pull state syncs with a random member, or turns
	// them off with "off". 0 means the default.
	EnvVarPushPullInterval = "SMUDGE_PUSH_PULL_INTERVAL"

	// DefaultPushPullInterval is the default push-pull interval (in
	// clusters of more than 32 members it is stretched: ×2 at 64, ×6 at
	// 1000).
	DefaultPushPullInterval = swim.DefaultPushPullInterval

	// DefaultMaxConcurrentPushPulls is the default of
	// Limits.MaxConcurrentPushPulls.
	DefaultMaxConcurrentPushPulls = 4
)

// Bounds of PushPullInterval.
const (
	minPushPullInterval = time.Second
	maxPushPullInterval = 24 * time.Hour
)

// pushPullInterval is the engine's push-pull interval: 0 when off.
func (c Config) pushPullInterval() time.Duration {
	switch d := c.PushPullInterval; {
	case d < 0:
		return 0
	case d == 0:
		return DefaultPushPullInterval
	default:
		return d
	}
}

// parsePushPullEnv reads SMUDGE_PUSH_PULL_INTERVAL.
func parsePushPullEnv(get func(string) (string, bool), c *Config) []envError {
	v, ok := get(EnvVarPushPullInterval)
	if !ok {
		return nil
	}
	if strings.EqualFold(v, "off") {
		c.PushPullInterval = -1
		return nil
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		return []envError{badEnv(EnvVarPushPullInterval, v, `not a duration (use a Go duration such as "30s", or "off")`)}
	case d < 0:
		return []envError{badEnv(EnvVarPushPullInterval, v, `negative duration (use "off" to turn push-pull off)`)}
	case d != 0 && (d < minPushPullInterval || d > maxPushPullInterval):
		return []envError{badEnv(EnvVarPushPullInterval, v, fmt.Sprintf("out of range %v-%v", minPushPullInterval, maxPushPullInterval))}
	case d == 0:
		c.PushPullInterval = DefaultPushPullInterval
	default:
		c.PushPullInterval = d
	}
	return nil
}

// validatePushPull checks PushPullInterval and MaxConcurrentPushPulls.
func (c Config) validatePushPull() []error {
	var errs []error
	if d := c.PushPullInterval; d > 0 && (d < minPushPullInterval || d > maxPushPullInterval) {
		errs = append(errs, fmt.Errorf("PushPullInterval (%s) = %v: out of range %v-%v (0 means the default, negative turns push-pull off)",
			EnvVarPushPullInterval, d, minPushPullInterval, maxPushPullInterval))
	}
	if n := c.Limits.MaxConcurrentPushPulls; n > 1024 {
		errs = append(errs, fmt.Errorf("Limits.MaxConcurrentPushPulls = %d: out of range 1-1024 (0 means the default)", n))
	}
	return errs
}
