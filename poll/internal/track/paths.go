package track

import "bytes"

// Paths keeps the distinct program paths of the agents in one fixed
// buffer, so that a slot holds a 2-byte id instead of a path: agents share
// few programs (one service per binary, or an interpreter). Intern runs
// when a session begins, never per beat; a scan of the ids is fine there.
// When the buffer or the id space is full, new paths are not kept and
// callers fall back to the agent's name.
type Paths struct {
	buf  []byte   // every path back to back, capacity fixed by NewPaths
	ends []uint32 // ends[i] is where path i+1 ends in buf
}

// NewPaths holds at most maxPaths paths of maxBytes in all.
func NewPaths(maxPaths, maxBytes int) *Paths {
	return &Paths{buf: make([]byte, 0, maxBytes), ends: make([]uint32, 0, min(maxPaths, 1<<16-1))}
}

// Intern returns path's id (≥ 1), adding it when it is new; 0 when it is
// empty or there is no room left.
func (p *Paths) Intern(path []byte) uint16 {
	if len(path) == 0 {
		return 0
	}
	start := uint32(0)
	for i, end := range p.ends {
		if bytes.Equal(p.buf[start:end], path) {
			return uint16(i + 1)
		}
		start = end
	}
	if len(p.ends) == cap(p.ends) || len(p.buf)+len(path) > cap(p.buf) {
		return 0
	}
	p.buf = append(p.buf, path...)
	p.ends = append(p.ends, uint32(len(p.buf)))
	return uint16(len(p.ends))
}

// Get returns the path of id, nil for 0 or an unknown id. It aliases the
// table.
func (p *Paths) Get(id uint16) []byte {
	if id == 0 || int(id) > len(p.ends) {
		return nil
	}
	start := uint32(0)
	if id > 1 {
		start = p.ends[id-2]
	}
	return p.buf[start:p.ends[id-1]]
}

// Len is the number of paths kept.
func (p *Paths) Len() int { return len(p.ends) }
