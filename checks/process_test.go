package checks

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A fake /proc is a directory made to look like /proc, read through
// os.DirFS as the real one is: PID/exe is a symbolic link to the
// executable's path (it need not exist), PID/cmdline holds the arguments
// separated and ended by NUL. Permission errors are injected by wrapping it
// in denyFS, so the tests see them also when run as root (root can read
// every exe link of the real /proc).

// fakeProcess is one process of a fake /proc.
type fakeProcess struct {
	pid  int
	exe  string   // the exe link's target; "" for no link (a kernel thread)
	args []string // the command line
}

// Fake PIDs are above Linux's PID_MAX_LIMIT (2^22), so they are never
// this test process's own.
const fakePID = 5_000_000

// makeProc builds a fake /proc in a temporary directory.
func makeProc(t *testing.T, procs ...fakeProcess) string {
	t.Helper()
	root := t.TempDir()
	for _, p := range procs {
		dir := filepath.Join(root, strconv.Itoa(p.pid))
		require.NoError(t, os.Mkdir(dir, 0o755))
		if p.exe != "" {
			require.NoError(t, os.Symlink(p.exe, filepath.Join(dir, "exe")))
		}
		cmdline := ""
		for _, a := range p.args {
			cmdline += a + "\x00"
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, "cmdline"), []byte(cmdline), 0o444))
	}
	// Entries of the real /proc that are not processes.
	require.NoError(t, os.Mkdir(filepath.Join(root, "sys"), 0o755))
	require.NoError(t, os.Symlink(strconv.Itoa(fakePID), filepath.Join(root, "self")))
	require.NoError(t, os.WriteFile(filepath.Join(root, "uptime"), []byte("1.0 1.0\n"), 0o444))
	return root
}

// nginx and friends: a typical process table.
var (
	nginxMaster = fakeProcess{fakePID + 1, "/usr/sbin/nginx", []string{"nginx: master process /usr/sbin/nginx -g daemon off;"}}
	nginxWorker = fakeProcess{fakePID + 2, "/usr/sbin/nginx", []string{"nginx: worker process"}}
	sshd        = fakeProcess{fakePID + 3, "/usr/sbin/sshd", []string{"/usr/sbin/sshd", "-D", "-e"}}
	kthread     = fakeProcess{fakePID + 4, "", nil}
	postgres    = fakeProcess{fakePID + 5, "/usr/lib/postgresql/16/bin/postgres (deleted)", []string{"/usr/lib/postgresql/16/bin/postgres", "-D", "/var/lib/postgresql/16/main"}}
)

func procEnv(t *testing.T, deny []string, procs ...fakeProcess) Env {
	t.Helper()
	d := denyFS{fsys: os.DirFS(makeProc(t, procs...)), deny: map[string]bool{}}
	for _, n := range deny {
		d.deny[n] = true
	}
	return Env{Proc: d}
}

func pid(p fakeProcess) string { return strconv.Itoa(p.pid) }

func TestProcessRunningByExecutable(t *testing.T) {
	env := procEnv(t, nil, nginxMaster, nginxWorker, sshd, kthread)

	passed, reason := run(mustCheck(t, TypeProcessRunning, "/usr/sbin/sshd", ""), env)
	assert.True(t, passed)
	assert.Equal(t, fmt.Sprintf("1 matching process; pid %s: executable /usr/sbin/sshd (/proc/%s/exe)", pid(sshd), pid(sshd)), reason)

	passed, reason = run(mustCheck(t, TypeProcessRunning, "/usr/sbin/nginx", ""), env)
	assert.True(t, passed)
	assert.True(t, strings.HasPrefix(reason, "2 matching processes; pid "+pid(nginxMaster)+": executable /usr/sbin/nginx"), reason)

	passed, reason = run(mustCheck(t, TypeProcessRunning, "/usr/bin/nginx", ""), env)
	assert.False(t, passed)
	assert.Equal(t, "no process with executable /usr/bin/nginx among 4 processes", reason)
}

func TestProcessRunningMatchesADeletedExecutable(t *testing.T) {
	// After an upgrade replaced the binary, the running process's exe link
	// says "(deleted)": the process still runs that program.
	env := procEnv(t, nil, postgres)
	passed, reason := run(mustCheck(t, TypeProcessRunning, "/usr/lib/postgresql/16/bin/postgres", ""), env)
	assert.True(t, passed)
	assert.Contains(t, reason, "executable /usr/lib/postgresql/16/bin/postgres (deleted)")
}

func TestProcessRunningByCommandLine(t *testing.T) {
	env := procEnv(t, nil, nginxMaster, nginxWorker, sshd, kthread)

	// The arguments are joined with spaces.
	passed, reason := run(mustCheck(t, TypeProcessRunning, "", "sshd -D -e"), env)
	assert.True(t, passed)
	assert.Equal(t, fmt.Sprintf(`1 matching process; pid %s: command line contains "sshd -D -e"`, pid(sshd)), reason)

	passed, reason = run(mustCheck(t, TypeProcessRunning, "", "worker process"), env)
	assert.True(t, passed, reason)

	passed, reason = run(mustCheck(t, TypeProcessRunning, "", "apache2"), env)
	assert.False(t, passed)
	assert.Equal(t, `no process with a command line containing "apache2" among 4 processes`, reason)
}

func TestProcessRunningNeedsBothExecutableAndCommandLine(t *testing.T) {
	env := procEnv(t, nil, nginxMaster, nginxWorker, sshd)

	passed, reason := run(mustCheck(t, TypeProcessRunning, "/usr/sbin/nginx", "master process"), env)
	assert.True(t, passed)
	assert.Equal(t, fmt.Sprintf(`1 matching process; pid %s: executable /usr/sbin/nginx (/proc/%s/exe), command line contains "master process"`, pid(nginxMaster), pid(nginxMaster)), reason)

	// sshd's command line has "-D", nginx's executable is nginx: no one
	// process has both.
	passed, reason = run(mustCheck(t, TypeProcessRunning, "/usr/sbin/nginx", "-D -e"), env)
	assert.False(t, passed)
	assert.Equal(t, `no process with executable /usr/sbin/nginx and a command line containing "-D -e" among 3 processes`, reason)
}

func TestProcessRunningFallsBackToArgv0WhenTheExecutableIsUnreadable(t *testing.T) {
	// As for another user's process when the agent is not root.
	env := procEnv(t, []string{pid(sshd) + "/exe"}, nginxMaster, sshd)
	passed, reason := run(mustCheck(t, TypeProcessRunning, "/usr/sbin/sshd", ""), env)
	assert.True(t, passed)
	assert.Equal(t, fmt.Sprintf("1 matching process; pid %s: argv[0] /usr/sbin/sshd (/proc/%s/cmdline; /proc/%s/exe is unreadable: permission denied)", pid(sshd), pid(sshd), pid(sshd)), reason)

	passed, reason = run(mustCheck(t, TypeProcessRunning, "/usr/sbin/apache2", ""), env)
	assert.False(t, passed)
	assert.Equal(t, "no process with executable /usr/sbin/apache2 among 2 processes; 1 process's executable could not be read, its argv[0] was compared instead", reason)

	// nginx rewrites its argv[0]: the fallback cannot recognise it, and
	// the reason says why.
	env = procEnv(t, []string{pid(nginxMaster) + "/exe", pid(nginxWorker) + "/exe"}, nginxMaster, nginxWorker, sshd)
	passed, reason = run(mustCheck(t, TypeProcessRunning, "/usr/sbin/nginx", ""), env)
	assert.False(t, passed)
	assert.Equal(t, "no process with executable /usr/sbin/nginx among 3 processes; 2 processes' executables could not be read, their argv[0] was compared instead", reason)
}

func TestProcessRunningPermissionErrorsAreFailures(t *testing.T) {
	// Neither the executable nor the command line of sshd can be read: the
	// check cannot know, so it fails and says why.
	env := procEnv(t, []string{pid(sshd) + "/exe", pid(sshd) + "/cmdline"}, nginxMaster, sshd)
	passed, reason := run(mustCheck(t, TypeProcessRunning, "/usr/sbin/sshd", ""), env)
	assert.False(t, passed)
	assert.Equal(t, fmt.Sprintf("no process with executable /usr/sbin/sshd among 2 processes; 1 could not be inspected (/proc/%s/exe: permission denied; /proc/%s/cmdline: permission denied)", pid(sshd), pid(sshd)), reason)

	env = procEnv(t, []string{pid(sshd) + "/cmdline"}, nginxMaster, sshd)
	passed, reason = run(mustCheck(t, TypeProcessRunning, "", "sshd"), env)
	assert.False(t, passed)
	assert.Equal(t, fmt.Sprintf(`no process with a command line containing "sshd" among 2 processes; 1 could not be inspected (/proc/%s/cmdline: permission denied)`, pid(sshd)), reason)

	// /proc itself cannot be listed.
	env = procEnv(t, []string{"."}, sshd)
	passed, reason = run(mustCheck(t, TypeProcessRunning, "/usr/sbin/sshd", ""), env)
	assert.False(t, passed)
	assert.Equal(t, "cannot list /proc: permission denied", reason)
}

func TestProcessRunningSkipsProcessesThatExited(t *testing.T) {
	// A process listed in /proc but gone before it is read is not counted.
	root := makeProc(t, sshd)
	require.NoError(t, os.Mkdir(filepath.Join(root, strconv.Itoa(fakePID+99)), 0o755)) // no exe, no cmdline
	passed, reason := run(mustCheck(t, TypeProcessRunning, "/usr/sbin/nginx", ""), Env{Proc: os.DirFS(root)})
	assert.False(t, passed)
	assert.Equal(t, "no process with executable /usr/sbin/nginx among 1 process", reason)
}

func TestProcessRunningNeverMatchesItself(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	me := fakeProcess{os.Getpid(), self, os.Args}
	env := procEnv(t, nil, me)
	passed, reason := run(mustCheck(t, TypeProcessRunning, self, ""), env)
	assert.False(t, passed)
	assert.Equal(t, "no process with executable "+self+" among 0 processes", reason)
}

func TestProcessRunningNeedsAProcThatReadsLinks(t *testing.T) {
	env := Env{Proc: openOnlyFS{fstest.MapFS{}}}
	passed, reason := run(mustCheck(t, TypeProcessRunning, "/usr/sbin/sshd", ""), env)
	assert.False(t, passed)
	assert.Contains(t, reason, "fs.ReadLinkFS")
}

// openOnlyFS hides every method of a file system but Open.
type openOnlyFS struct{ fsys fstest.MapFS }

func (o openOnlyFS) Open(name string) (fs.File, error) { return o.fsys.Open(name) }

func TestProcessRunningOnTheRealProc(t *testing.T) {
	if _, err := os.Stat("/proc/self/exe"); err != nil {
		t.Skip("no /proc here")
	}
	// A child process with a command line nobody else has.
	marker := fmt.Sprintf("3600.%d%06d", os.Getpid(), time.Now().UnixNano()%1_000_000)
	cmd := exec.Command("sleep", marker)
	require.NoError(t, cmd.Start())
	exited := false
	t.Cleanup(func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	// Wait (bounded) until the child shows its own command line in /proc:
	// right after the fork it may still show ours.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid))
		if strings.Contains(string(b), marker) || time.Now().After(deadline) {
			break
		}
		runtime.Gosched()
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid))
	require.NoError(t, err)

	r := &Runner{}
	checks := []Check{
		{Spec: Spec{Name: "by_text", Type: TypeProcessRunning}, Checker: processRunning{text: marker}},
		{Spec: Spec{Name: "by_both", Type: TypeProcessRunning}, Checker: processRunning{exe: exe, text: marker}},
	}
	for _, res := range r.Run(context.Background(), checks) {
		assert.True(t, res.Passed, "%s: %s", res.Name, res.Reason)
		assert.Contains(t, res.Reason, fmt.Sprintf("pid %d", cmd.Process.Pid), res.Name)
	}

	require.NoError(t, cmd.Process.Kill())
	cmd.Wait() // reaped: gone from /proc
	exited = true
	for _, res := range r.Run(context.Background(), checks) {
		assert.False(t, res.Passed, "%s: %s", res.Name, res.Reason)
	}
}
