package track

import (
	"reflect"
	"testing"
	"unsafe"
)

// TestSlotSize: a slot is at most 128 bytes and holds no pointer. Each
// byte of a slot is 4 KiB of resident memory at 4096 agents and 64 KiB at
// 65536 (README "Memory"); a pointer would make the garbage collector read
// the whole table, every page of it resident from then on.
func TestSlotSize(t *testing.T) {
	if n := unsafe.Sizeof(Slot{}); n > 128 {
		t.Errorf("Slot is %d bytes, want at most 128: keep what few sessions use beside the table (as Tracker.SetText does)", n)
	}
	var walk func(typ reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		switch typ.Kind() {
		case reflect.Struct:
			for i := range typ.NumField() {
				walk(typ.Field(i).Type, path+"."+typ.Field(i).Name)
			}
		case reflect.Array:
			walk(typ.Elem(), path+"[]")
		case reflect.Pointer, reflect.String, reflect.Slice, reflect.Map, reflect.Interface, reflect.Func, reflect.Chan, reflect.UnsafePointer:
			t.Errorf("%s is a %v: a slot must hold no pointer", path, typ.Kind())
		}
	}
	walk(reflect.TypeOf(Slot{}), "Slot")
}
