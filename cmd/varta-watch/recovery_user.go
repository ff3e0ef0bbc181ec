package main

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// userError is a --recovery-user value that names no user or group here,
// or one the observer cannot switch to; Err is the lookup's cause.
type userError struct {
	what string
	err  error
}

func (e *userError) Error() string {
	if e.err == nil {
		return e.what
	}
	return e.what + ": " + e.err.Error()
}
func (e *userError) Unwrap() error { return e.err }

// lookupUser reads USER[:GROUP] (names or numeric ids) into the
// credential recovery children run with: the user's uid, the group's gid
// (the user's primary group when none is given), and no supplementary
// groups. Switching needs root (or CAP_SETUID and CAP_SETGID), checked
// here so that a misconfigured observer fails at start, not at its
// first stall.
func lookupUser(spec string) (*syscall.Credential, error) {
	name, group, hasGroup := strings.Cut(spec, ":")
	if name == "" || hasGroup && group == "" {
		return nil, &userError{what: "want USER or USER:GROUP, got " + strconv.Quote(spec)}
	}
	// /etc/passwd and /etc/group, read directly: os/user would bring fmt
	// and more into a binary with a size budget, and a board's accounts
	// live in those files (no NSS).
	uidS, gidS, ok := dbLookup("/etc/passwd", name, 2, 3)
	if !ok {
		if !isNumber(name) {
			return nil, &userError{what: "no user " + strconv.Quote(name) + " in /etc/passwd"}
		}
		uidS, gidS = name, name // a bare uid with no passwd entry
	}
	gid := gidS
	if hasGroup {
		if g, _, ok := dbLookup("/etc/group", group, 2, 2); ok {
			gid = g
		} else if isNumber(group) {
			gid = group
		} else {
			return nil, &userError{what: "no group " + strconv.Quote(group) + " in /etc/group"}
		}
	}
	u := struct{ Uid string }{uidS}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	g, err2 := strconv.ParseUint(gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, &userError{what: "user " + strconv.Quote(spec) + " has no numeric uid and gid", err: err}
	}
	if os.Geteuid() != 0 && (uint32(uid) != uint32(os.Geteuid()) || uint32(g) != uint32(os.Getegid())) {
		return nil, &userError{what: "switching recovery children to " + strconv.Quote(spec) +
			" needs the observer to run as root (or with CAP_SETUID and CAP_SETGID)"}
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(g), Groups: []uint32{}}, nil
}

func isNumber(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

// dbLookup finds the line of file (passwd or group format: name:x:...)
// whose first field is name, and returns its fields a and b.
func dbLookup(file, name string, a, b int) (string, string, bool) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", "", false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) > max(a, b) && f[0] == name {
			return f[a], f[b], true
		}
	}
	return "", "", false
}
