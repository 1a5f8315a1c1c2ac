package checks

import (
	"context"
	"io/fs"
)

// constChecker always passes or always fails.
type constChecker struct{ passed bool }

func (c constChecker) Check(context.Context, Env) (bool, string) {
	if c.passed {
		return true, "always passes"
	}
	return false, "always fails"
}

// denyFS wraps a file system; the names in deny fail with permission
// denied (Open, Stat, ReadLink, Lstat), as they do for an unprivileged
// user, whoever runs the test.
type denyFS struct {
	fsys fs.FS
	deny map[string]bool
}

func (d denyFS) denied(op, name string) error {
	if d.deny[name] {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrPermission}
	}
	return nil
}

func (d denyFS) Open(name string) (fs.File, error) {
	if err := d.denied("open", name); err != nil {
		return nil, err
	}
	return d.fsys.Open(name)
}

func (d denyFS) ReadLink(name string) (string, error) {
	if err := d.denied("readlink", name); err != nil {
		return "", err
	}
	return fs.ReadLink(d.fsys, name)
}

func (d denyFS) Lstat(name string) (fs.FileInfo, error) {
	if err := d.denied("lstat", name); err != nil {
		return nil, err
	}
	return fs.Lstat(d.fsys, name)
}
