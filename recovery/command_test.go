package recovery

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	t.Setenv("PATH", "relative/dir::/usr/bin:/bin")
	plain := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		line     string
		wantPath string
		wantArgs []string
		wantErr  string
	}{
		{name: "bare name via PATH, pid appended", line: "printf '%s\\n' x",
			wantPath: "/usr/bin/printf", wantArgs: []string{"printf", "%s\\n", "x", "{pid}"}},
		{name: "absolute, placeholder inside an argument", line: " /bin/echo  --pid={pid}  tail ",
			wantPath: "/bin/echo", wantArgs: []string{"/bin/echo", "--pid={pid}", "tail"}},
		{name: "tabs and newlines split too", line: "/bin/echo\ta\nb",
			wantPath: "/bin/echo", wantArgs: []string{"/bin/echo", "a", "b", "{pid}"}},
		{name: "empty", line: "  \t ", wantErr: "empty"},
		{name: "relative path", line: "./restart.sh", wantErr: "relative path"},
		{name: "not found", line: "no-such-program-varta", wantErr: "not found"},
		{name: "not executable", line: plain, wantErr: "not executable"},
		{name: "directory", line: "/bin/", wantErr: "not a regular file"},
		{name: "NUL", line: "/bin/echo a\x00b", wantErr: "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCommand(tt.line)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseCommand(%q) error = %v, want one containing %q", tt.line, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCommand(%q): %v", tt.line, err)
			}
			if got.Path != tt.wantPath || !slices.Equal(got.Args, tt.wantArgs) {
				t.Fatalf("ParseCommand(%q) = %q %q, want %q %q", tt.line, got.Path, got.Args, tt.wantPath, tt.wantArgs)
			}
		})
	}
}

func TestArgv(t *testing.T) {
	c := Command{Path: "/bin/x", Args: []string{"x{pid}", "a", "{pid}-{pid}", "{pid}"}}
	got := c.argv(4242)
	want := []string{"x{pid}", "a", "4242-4242", "4242"}
	if !slices.Equal(got, want) {
		t.Fatalf("argv(4242) = %q, want %q", got, want)
	}
}

func TestLoadCommandFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask-proof
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "# restart the agent\n/bin/echo restart\n  # indented comment\n  --pid={pid}\n", 0o600)
	c, err := LoadCommandFile(good)
	if err != nil {
		t.Fatalf("LoadCommandFile(good): %v", err)
	}
	if want := []string{"/bin/echo", "restart", "--pid={pid}"}; c.Path != "/bin/echo" || !slices.Equal(c.Args, want) {
		t.Fatalf("LoadCommandFile(good) = %q %q, want /bin/echo %q", c.Path, c.Args, want)
	}
	if _, err := LoadCommandFile(write("ro", "/bin/echo\n", 0o400)); err != nil {
		t.Fatalf("LoadCommandFile(mode 0400): %v", err)
	}

	link := filepath.Join(dir, "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := mkfifo(fifo); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, wantErr string
	}{
		{"group readable", write("g", "/bin/echo", 0o640), "chmod 600"},
		{"world writable", write("w", "/bin/echo", 0o602), "chmod 600"},
		{"symlink", link, "symlink"},
		{"directory", dir, "not a regular file"},
		{"fifo (must not block)", fifo, "not a regular file"},
		{"missing", filepath.Join(dir, "nope"), "no such file"},
		{"empty", write("empty", "# nothing\n", 0o600), "empty"},
		{"bad program", write("bad", "./x\n", 0o600), "relative path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadCommandFile(tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.path) {
				t.Fatalf("LoadCommandFile(%s) error = %v, want one naming the file and containing %q", tt.path, err, tt.wantErr)
			}
		})
	}

	t.Run("foreign owner", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to chown")
		}
		p := write("foreign", "/bin/echo", 0o600)
		if err := os.Chown(p, 4321, 4321); err != nil {
			t.Skipf("chown: %v", err)
		}
		_, err := LoadCommandFile(p)
		if err == nil || !strings.Contains(err.Error(), "owned by uid 4321") {
			t.Fatalf("LoadCommandFile(foreign) error = %v, want owner complaint", err)
		}
	})
}

// TestSplitWords: the quoting rules of --recovery-exec, spelled out; no
// expansion of any kind.
func TestSplitWords(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"a b  c", []string{"a", "b", "c"}},
		{`/bin/sh -c 'echo {pid} >> F'`, []string{"/bin/sh", "-c", "echo {pid} >> F"}},
		{`x "a \"b\" \\ \n $HOME"`, []string{"x", `a "b" \ \n $HOME`}},
		{`x 'it''s' "" ''`, []string{"x", "its", "", ""}},
		{`a\ b c\'d`, []string{"a b", "c'd"}},
		{"\t x\n", []string{"x"}},
		{"", nil},
	} {
		got, err := SplitWords(tc.line)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("SplitWords(%q) = %q, %v; want %q", tc.line, got, err, tc.want)
		}
	}
	for _, line := range []string{`sh -c 'echo`, `sh "a`, `sh a\`, `sh "a\"`} {
		_, err := SplitWords(line)
		var se *CommandSyntaxError
		if !errors.Is(err, ErrCommandSyntax) || !errors.As(err, &se) {
			t.Errorf("SplitWords(%q) = %v, want a CommandSyntaxError", line, err)
		}
	}
}
