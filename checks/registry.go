package checks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
)

// The built-in check types.
const (
	// TypeFileExists passes if Path exists (any kind of file, as test -e).
	TypeFileExists = "file_exists"
	// TypeFileContains passes if the file Path contains the text Check.
	TypeFileContains = "file_contains"
	// TypeProcessRunning passes if a process runs whose executable is Path
	// and whose command line contains Check (either may be empty, not
	// both).
	TypeProcessRunning = "process_running"
)

// Env is what a Checker examines: the node's file system and its process
// table. The Runner fills it in; tests give fake ones.
type Env struct {
	// FS is the node's file system, rooted at "/": the check path
	// "/etc/hosts" is the FS name "etc/hosts". os.DirFS("/") by default.
	FS fs.FS
	// Proc is the process information file system, as mounted at /proc:
	// "1234/exe", "1234/cmdline". os.DirFS("/proc") by default. It must
	// implement fs.ReadLinkFS for process_running to read executables.
	Proc fs.FS
}

// A Checker tests one condition on this node.
type Checker interface {
	// Check reports whether the condition holds, and why or why not, in a
	// short human-readable sentence. An error that prevents checking (a
	// permission error, say) is a failure whose reason says so, never a
	// pass. Check should return soon after ctx is done.
	Check(ctx context.Context, env Env) (passed bool, reason string)
}

// A Factory validates a Spec of its type and builds its Checker. A problem
// with one field should be returned as FieldErrorf(field, ...), so that the
// message names the field; the parser adds the check's name.
type Factory func(Spec) (Checker, error)

// A Registry maps check type names to their Factory. The parser accepts only
// the types of its Registry. A Registry is safe for concurrent use.
type Registry struct {
	mu        sync.RWMutex
	factories map[string]Factory
}

// DefaultRegistry holds the built-in types. Parse, ParseFile and Register
// use it.
var DefaultRegistry = NewRegistry()

// NewRegistry returns a Registry that holds the built-in types
// (file_exists, file_contains, process_running).
func NewRegistry() *Registry {
	r := &Registry{factories: map[string]Factory{}}
	r.factories[TypeFileExists] = newFileExists
	r.factories[TypeFileContains] = newFileContains
	r.factories[TypeProcessRunning] = newProcessRunning
	return r
}

// Register adds the type name to DefaultRegistry. See Registry.Register.
func Register(name string, f Factory) error { return DefaultRegistry.Register(name, f) }

// Register adds the check type name, built by f. The name must be 1 to 64
// lowercase ASCII letters, digits and underscores, and not registered yet.
func (r *Registry) Register(name string, f Factory) error {
	if f == nil {
		return fmt.Errorf("checks: register %q: nil factory", name)
	}
	if err := validTypeName(name); err != nil {
		return fmt.Errorf("checks: register %q: %w", name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.factories[name]; dup {
		return fmt.Errorf("checks: register %q: type already registered", name)
	}
	r.factories[name] = f
	return nil
}

// Types returns the registered type names, sorted.
func (r *Registry) Types() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.factories))
	for n := range r.factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// build runs the Factory of s.Type.
func (r *Registry) build(s Spec) (Check, error) {
	r.mu.RLock()
	f := r.factories[s.Type]
	r.mu.RUnlock()
	if f == nil {
		return Check{}, FieldErrorf(FieldType, "unknown type %q; known types: %s", s.Type, strings.Join(r.Types(), ", "))
	}
	c, err := f(s)
	if err != nil {
		return Check{}, err
	}
	if c == nil {
		return Check{}, fmt.Errorf("the factory of type %q returned no checker", s.Type)
	}
	return Check{Spec: s, Checker: c}, nil
}

// validTypeName checks a type name: [a-z0-9_]{1,64}.
func validTypeName(name string) error {
	if name == "" || len(name) > 64 {
		return errors.New("a type name is 1 to 64 characters")
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return errors.New("a type name has only lowercase ASCII letters, digits and underscores")
		}
	}
	return nil
}
