package smudge

import (
	"fmt"
	"math"
	"time"
)

// Environment variables and defaults of streams and Publish (see Config).
const (
	// EnvVarMaxMessageBytes sets the longest payload of Send and Publish,
	// in bytes.
	EnvVarMaxMessageBytes = "SMUDGE_MAX_MESSAGE_BYTES"

	// DefaultMaxMessageBytes is the default longest payload of Send and
	// Publish: 1 MiB.
	DefaultMaxMessageBytes int = 1 << 20

	// EnvVarGossipGroup sets how many members Publish's burst sends a
	// publication to, at the origin and at each member on first receipt.
	EnvVarGossipGroup = "SMUDGE_GOSSIP_GROUP"

	// DefaultGossipGroup is the default size of Publish's gossip group.
	DefaultGossipGroup int = 5

	// EnvVarPublishTTL sets, as a Go duration such as "10m", how long a
	// publication is passed on and repaired, and its id remembered.
	EnvVarPublishTTL = "SMUDGE_PUBLISH_TTL"

	// DefaultPublishTTL is the default time to live of a publication.
	DefaultPublishTTL time.Duration = 10 * time.Minute

	// EnvVarStateDir sets the directory where the node keeps state across
	// restarts (the ids of publications). Empty: nothing is kept.
	EnvVarStateDir = "SMUDGE_STATE_DIR"
)

// Bounds checked by Validate.
const (
	minMessageBytes = 1 << 10
	maxMessageBytes = 256 << 20
	maxGossipGroup  = 64
)

// parseStreamEnv reads the variables of streams and Publish into c.
func parseStreamEnv(get func(string) (string, bool), c *Config) []envError {
	var errs []envError
	integer := func(name string, dst *int, min, max int64, what string) {
		v, ok := get(name)
		if !ok {
			return
		}
		n, problem := parseEnvInt(v, 0, max, what)
		switch {
		case problem != "":
			errs = append(errs, badEnv(name, v, problem))
		case n != 0 && int64(n) < min:
			errs = append(errs, badEnv(name, v, fmt.Sprintf("out of range %d-%d", min, max)))
		case n != 0:
			*dst = n
		}
	}
	integer(EnvVarMaxMessageBytes, &c.MaxMessageBytes, minMessageBytes, maxMessageBytes, "integer number of bytes")
	integer(EnvVarGossipGroup, &c.GossipGroup, 1, maxGossipGroup, "integer")
	if v, ok := get(EnvVarPublishTTL); ok {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			errs = append(errs, badEnv(EnvVarPublishTTL, v, `not a duration (use a Go duration such as "10m" or "1h")`))
		case d < 0:
			errs = append(errs, badEnv(EnvVarPublishTTL, v, "negative duration"))
		case d > maxPublishTTL:
			errs = append(errs, badEnv(EnvVarPublishTTL, v, fmt.Sprintf("longer than %v", maxPublishTTL)))
		case d != 0:
			c.PublishTTL = d
		}
	}
	if v, ok := get(EnvVarStateDir); ok {
		c.StateDir = v
	}
	return errs
}

// validateStreams checks the fields of streams and Publish.
func (c Config) validateStreams() []error {
	var errs []error
	add := func(field, env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s (%s) %s", field, env, fmt.Sprintf(format, args...)))
	}
	if n := c.MaxMessageBytes; n != 0 && (n < minMessageBytes || n > maxMessageBytes) {
		add("MaxMessageBytes", EnvVarMaxMessageBytes, "= %d: out of range %d-%d (0 means the default)", n, minMessageBytes, maxMessageBytes)
	}
	if n := c.GossipGroup; n < 0 || n > maxGossipGroup {
		add("GossipGroup", EnvVarGossipGroup, "= %d: out of range 1-%d (0 means the default)", n, maxGossipGroup)
	}
	if d := c.PublishTTL; d != 0 && (d < time.Second || d > maxPublishTTL) {
		add("PublishTTL", EnvVarPublishTTL, "= %v: out of range 1s-%v (0 means the default)", d, maxPublishTTL)
	}
	if l := c.Limits.MaxPendingMessageBytes; l > math.MaxInt64/4 {
		errs = append(errs, fmt.Errorf("Limits.MaxPendingMessageBytes = %d: out of range (0 means the default)", l))
	}
	return errs
}

// Default stream limits (see Limits).
const (
	DefaultMaxInboundStreams         = 64
	DefaultStreamTimeout             = 10 * time.Second
	DefaultMaxPendingMessageBytes    = 64 << 20
	DefaultMaxPublications           = 1 << 16
	DefaultMaxStoredPublicationBytes = 64 << 20
)

// streamDefaults fills the zero fields of streams and Publish.
func (c *Config) streamDefaults() {
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.GossipGroup == 0 {
		c.GossipGroup = DefaultGossipGroup
	}
	if c.PublishTTL == 0 {
		c.PublishTTL = DefaultPublishTTL
	}
}

// streamDefaults fills the zero stream limits.
func (l *Limits) streamDefaults() {
	if l.MaxInboundStreams <= 0 {
		l.MaxInboundStreams = DefaultMaxInboundStreams
	}
	if l.StreamTimeout <= 0 {
		l.StreamTimeout = DefaultStreamTimeout
	}
	if l.MaxConcurrentPushPulls <= 0 {
		l.MaxConcurrentPushPulls = DefaultMaxConcurrentPushPulls
	}
	if l.MaxPendingMessageBytes <= 0 {
		l.MaxPendingMessageBytes = DefaultMaxPendingMessageBytes
	}
	if l.MaxPublications <= 0 {
		l.MaxPublications = DefaultMaxPublications
	}
	if l.MaxStoredPublicationBytes <= 0 {
		l.MaxStoredPublicationBytes = DefaultMaxStoredPublicationBytes
	}
}
