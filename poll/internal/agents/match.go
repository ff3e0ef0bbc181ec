package agents

import "bytes"

// Process is what is known of a process to recognise it. Args (its
// arguments after the program) and Cgroup are read only when the file
// needs them (NeedArgs, NeedCgroup).
type Process struct {
	Exe, Comm []byte
	Args      [][]byte
	Cgroup    []byte
}

// Match returns the index of the first declared agent whose every given
// criterion holds for p, or -1.
func (f *File) Match(p *Process) int {
	if f == nil {
		return -1
	}
	for i := range f.Agents {
		if f.Agents[i].matches(p) {
			return i
		}
	}
	return -1
}

func (a *Agent) matches(p *Process) bool {
	if a.Exe != "" && string(p.Exe) != a.Exe {
		return false
	}
	if a.Comm != "" && string(p.Comm) != a.Comm {
		return false
	}
	if a.Cgroup != "" && !underCgroup(p.Cgroup, a.Cgroup) {
		return false
	}
	if a.Arg != "" {
		found := false
		for _, arg := range p.Args {
			if string(arg) == a.Arg {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// underCgroup reports whether cg is dir or a cgroup below it.
func underCgroup(cg []byte, dir string) bool {
	if dir == "/" {
		return len(cg) > 0
	}
	return bytes.HasPrefix(cg, []byte(dir)) && (len(cg) == len(dir) || cg[len(dir)] == '/')
}

// Index returns the declared agent named name, or -1.
func (f *File) Index(name string) int {
	if f == nil {
		return -1
	}
	for i := range f.Agents {
		if f.Agents[i].Name == name {
			return i
		}
	}
	return -1
}
