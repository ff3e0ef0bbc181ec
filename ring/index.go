package ring

// Index maps uint32 keys (pids) to int32 values (slot numbers) in a fixed
// table: open addressing with linear probing and backward-shift deletion,
// so there are no tombstones and lookups stay as short as on a fresh table
// however long the observer runs. The table is a power of two at least
// twice the capacity, so it is never more than half full and every probe
// ends at an empty bucket. An empty bucket is all zero, so a new table is
// left as the allocator gives it: its pages cost memory only once used.
type Index struct {
	keys  []uint32
	vals  []int32 // value + 1; 0 marks an empty bucket
	shift uint32  // 32 - log2(len(vals))
	n     int
	max   int
}

// NewIndex returns an index holding at most capacity keys.
func NewIndex(capacity int) Index {
	size, bits := 2, uint32(1)
	for size < 2*capacity {
		size <<= 1
		bits++
	}
	return Index{keys: make([]uint32, size), vals: make([]int32, size), shift: 32 - bits, max: capacity}
}

// Len is the number of keys held.
func (x *Index) Len() int { return x.n }

// home is key's preferred bucket: Fibonacci hashing spreads the runs of
// consecutive pids an init system spawns across the table.
func (x *Index) home(key uint32) uint32 { return (key * 0x9E3779B9) >> x.shift }

// find returns key's bucket and whether key is there; when absent, the
// bucket is the empty one where its probe ended.
func (x *Index) find(key uint32) (uint32, bool) {
	mask := uint32(len(x.vals) - 1)
	for b := x.home(key); ; b = (b + 1) & mask {
		if x.vals[b] == 0 {
			return b, false
		}
		if x.keys[b] == key {
			return b, true
		}
	}
}

// Get returns key's value; ok is false when key is absent.
func (x *Index) Get(key uint32) (v int32, ok bool) {
	b, ok := x.find(key)
	if !ok {
		return -1, false
	}
	return x.vals[b] - 1, true
}

// Put sets key's value, adding key if absent. It reports false, changing
// nothing, when v is negative or key is new and the index already holds
// capacity keys.
func (x *Index) Put(key uint32, v int32) bool {
	if v < 0 || v == 1<<31-1 { // v+1 must stay above 0, the empty mark
		return false
	}
	b, ok := x.find(key)
	if !ok {
		if x.n == x.max {
			return false
		}
		x.n++
		x.keys[b] = key
	}
	x.vals[b] = v + 1
	return true
}

// Delete removes key, reporting whether it was present. Entries after the
// hole move back into it when their home bucket allows.
func (x *Index) Delete(key uint32) bool {
	hole, ok := x.find(key)
	if !ok {
		return false
	}
	mask := uint32(len(x.vals) - 1)
	for b := (hole + 1) & mask; x.vals[b] != 0; b = (b + 1) & mask {
		// The entry at b may fill the hole unless its home lies cyclically
		// in (hole, b]: then it would sit before its home and be lost.
		if (b-x.home(x.keys[b]))&mask >= (b-hole)&mask {
			x.keys[hole], x.vals[hole] = x.keys[b], x.vals[b]
			hole = b
		}
	}
	x.vals[hole] = 0
	x.n--
	return true
}
