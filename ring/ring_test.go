package ring

import (
	"math/rand/v2"
	"testing"
)

func TestFIFO(t *testing.T) {
	q := NewFIFO[int](3)
	for round := 0; round < 4; round++ { // wraps the head around the buffer
		for i := 0; i < 3; i++ {
			if !q.Push(round*10 + i) {
				t.Fatalf("round %d: Push %d refused with Len %d", round, i, q.Len())
			}
		}
		if q.Push(99) {
			t.Fatalf("Push into a full queue succeeded")
		}
		for i := 0; i < 3; i++ {
			if v, ok := q.Pop(); !ok || v != round*10+i {
				t.Fatalf("Pop = %d, %v, want %d", v, ok, round*10+i)
			}
		}
		if _, ok := q.Pop(); ok || q.Len() != 0 {
			t.Fatalf("Pop from an empty queue succeeded")
		}
	}
}

// TestIndexModel runs random operations against a map; small capacities
// force long probe runs, wrap-around and backward shifts.
func TestIndexModel(t *testing.T) {
	for _, capacity := range []int{1, 3, 8, 100} {
		r := rand.New(rand.NewPCG(1, uint64(capacity)))
		x := NewIndex(capacity)
		model := map[uint32]int32{}
		for op := 0; op < 20000; op++ {
			key := uint32(r.IntN(3 * capacity)) // few keys: many collisions
			if r.IntN(8) == 0 {
				key = r.Uint32() // and some spread ones
			}
			switch r.IntN(3) {
			case 0:
				v := int32(r.IntN(1000))
				_, had := model[key]
				ok := x.Put(key, v)
				if want := had || len(model) < capacity; ok != want {
					t.Fatalf("cap %d: Put(%d) = %v, want %v", capacity, key, ok, want)
				}
				if ok {
					model[key] = v
				}
			case 1:
				_, had := model[key]
				if x.Delete(key) != had {
					t.Fatalf("cap %d: Delete(%d) = %v, want %v", capacity, key, !had, had)
				}
				delete(model, key)
			default:
				v, ok := x.Get(key)
				mv, had := model[key]
				if ok != had || (ok && v != mv) {
					t.Fatalf("cap %d: Get(%d) = %d, %v, want %d, %v", capacity, key, v, ok, mv, had)
				}
			}
			if x.Len() != len(model) {
				t.Fatalf("cap %d: Len = %d, want %d", capacity, x.Len(), len(model))
			}
		}
		for k, v := range model {
			if got, ok := x.Get(k); !ok || got != v {
				t.Fatalf("cap %d: final Get(%d) = %d, %v, want %d", capacity, k, got, ok, v)
			}
		}
	}
}

func collect(l *List, k *Links) []int32 {
	var out []int32
	for i := l.Front(); i >= 0; i = k.Next(i) {
		out = append(out, i)
	}
	return out
}

func TestList(t *testing.T) {
	k := NewLinks(5)
	a, b := NewList(), NewList()
	for i := int32(0); i < 5; i++ {
		if i%2 == 0 {
			a.PushBack(&k, i)
		} else {
			b.PushBack(&k, i)
		}
	}
	a.MoveToBack(&k, 0)
	a.Remove(&k, 2)
	b.PushBack(&k, 2)
	b.MoveToBack(&k, 2) // already last
	b.Remove(&k, 1)
	tests := []struct {
		name string
		l    *List
		want []int32
	}{{"a", &a, []int32{4, 0}}, {"b", &b, []int32{3, 2}}}
	for _, tc := range tests {
		got := collect(tc.l, &k)
		if len(got) != len(tc.want) {
			t.Fatalf("list %s = %v, want %v", tc.name, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("list %s = %v, want %v", tc.name, got, tc.want)
			}
		}
	}
	if k.Linked(1) || !k.Linked(2) {
		t.Errorf("Linked(1) = %v, Linked(2) = %v, want false, true", k.Linked(1), k.Linked(2))
	}
	a.Remove(&k, 4)
	a.Remove(&k, 0)
	if a.Front() != -1 {
		t.Errorf("emptied list has front %d", a.Front())
	}
}

var sinkI32 int32

func TestNoAllocs(t *testing.T) {
	x := NewIndex(64)
	q := NewFIFO[int](8)
	k := NewLinks(8)
	l := NewList()
	n := testing.AllocsPerRun(100, func() {
		for i := uint32(0); i < 64; i++ {
			x.Put(i*7919, int32(i))
		}
		for i := uint32(0); i < 64; i++ {
			sinkI32, _ = x.Get(i * 7919)
			x.Delete(i * 7919)
		}
		q.Push(1)
		q.Pop()
		l.PushBack(&k, 3)
		l.Remove(&k, 3)
	})
	if n != 0 {
		t.Errorf("%v allocs per run, want 0", n)
	}
}

func BenchmarkIndexGet(b *testing.B) {
	x := NewIndex(4096)
	for i := uint32(0); i < 4096; i++ {
		x.Put(1000+i, int32(i))
	}
	b.ReportAllocs()
	i := uint32(0)
	for b.Loop() {
		sinkI32, _ = x.Get(1000 + i&4095)
		i++
	}
}

func TestStack(t *testing.T) {
	k := NewStack(3)
	for want := int32(0); want < 3; want++ {
		if i, ok := k.Pop(); !ok || i != want {
			t.Fatalf("Pop = %d, %v; want %d, true", i, ok, want)
		}
	}
	if i, ok := k.Pop(); ok {
		t.Fatalf("Pop of an empty stack = %d, true", i)
	}
	k.Push(1)
	if k.Len() != 1 {
		t.Fatalf("Len = %d after one Push, want 1", k.Len())
	}
	k.Push(2)
	k.Push(0)
	defer func() {
		if recover() == nil {
			t.Fatalf("a fourth Push on a stack of 3 did not panic")
		}
	}()
	k.Push(1)
}

// TestStackModel: the stack that counts its fresh slots behaves as one
// filled with n-1..0 at the start (the reference model here), under any
// sequence of pops and pushes of handed-out slots; and a new stack has
// stored nothing, so its array's pages are untouched.
func TestStackModel(t *testing.T) {
	const n = 50
	k := NewStack(n)
	if len(k.s) != 0 || cap(k.s) != n || k.Len() != n {
		t.Fatalf("new stack: %d stored, room %d, Len %d; want 0, %d, %d", len(k.s), cap(k.s), k.Len(), n, n)
	}
	model := make([]int32, n)
	for i := range model {
		model[i] = int32(n - 1 - i)
	}
	var out []int32 // slots handed out, to push back
	rng := rand.New(rand.NewPCG(1, 2))
	for step := range 5000 {
		if rng.IntN(2) == 0 && len(out) > 0 {
			j := rng.IntN(len(out))
			i := out[j]
			out = append(out[:j], out[j+1:]...)
			k.Push(i)
			model = append(model, i)
		} else {
			got, ok := k.Pop()
			if len(model) == 0 {
				if ok {
					t.Fatalf("step %d: Pop of an empty stack gave %d", step, got)
				}
				continue
			}
			want := model[len(model)-1]
			model = model[:len(model)-1]
			if !ok || got != want {
				t.Fatalf("step %d: Pop = %d, %v; want %d", step, got, ok, want)
			}
			out = append(out, got)
		}
		if k.Len() != len(model) {
			t.Fatalf("step %d: Len %d, want %d", step, k.Len(), len(model))
		}
	}
}

// TestIndexStartsZeroed: a new index is all zero, as the allocator gives
// it (so a large, little-used table costs no memory), and still finds
// nothing; value 0 and the largest value survive the +1 encoding, and a
// value that cannot be encoded is refused.
func TestIndexStartsZeroed(t *testing.T) {
	x := NewIndex(1000)
	for b := range x.vals {
		if x.vals[b] != 0 || x.keys[b] != 0 {
			t.Fatalf("bucket %d of a new index is %d/%d, want zero", b, x.keys[b], x.vals[b])
		}
	}
	if _, ok := x.Get(0); ok {
		t.Fatal("a new index finds key 0")
	}
	if !x.Put(0, 0) || !x.Put(7, 1<<31-2) || x.Put(8, 1<<31-1) {
		t.Fatal("Put of 0 and 2^31-2 must succeed and of 2^31-1 fail")
	}
	if v, ok := x.Get(0); !ok || v != 0 {
		t.Errorf("Get(0) = %d, %v; want 0, true", v, ok)
	}
	if v, ok := x.Get(7); !ok || v != 1<<31-2 {
		t.Errorf("Get(7) = %d, %v; want 2^31-2", v, ok)
	}
	if !x.Delete(0) || x.Len() != 1 {
		t.Errorf("Delete(0): Len %d, want 1", x.Len())
	}
}

// TestListInsertAfter: inserting at the front, in the middle and after the
// tail keeps both directions of the links right.
func TestListInsertAfter(t *testing.T) {
	k := NewLinks(5)
	l := NewList()
	l.InsertAfter(&k, -1, 2) // into an empty list
	l.InsertAfter(&k, 2, 4)  // after the tail
	l.InsertAfter(&k, -1, 0) // at the front
	l.InsertAfter(&k, 0, 1)  // in the middle
	l.InsertAfter(&k, 2, 3)  // in the middle
	got := collect(&l, &k)
	want := []int32{0, 1, 2, 3, 4}
	if len(got) != len(want) {
		t.Fatalf("list = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("list = %v, want %v", got, want)
		}
	}
	var back []int32
	for i := l.Back(); i >= 0; i = k.Prev(i) {
		back = append(back, i)
	}
	for i := range back {
		if back[i] != want[len(want)-1-i] {
			t.Fatalf("backwards = %v, want the reverse of %v", back, want)
		}
	}
}
