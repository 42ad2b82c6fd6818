package fleet

import (
	"strings"
	"testing"
)

func TestPlace(t *testing.T) {
	boxes := []Box{
		{Name: "fl1", MemAvailable: 4 << 30, Labels: map[string]string{"zone": "a"}},
		{Name: "fl2", MemAvailable: 8 << 30, Labels: map[string]string{"zone": "b", "gpu": "yes"}},
		{Name: "fl3", MemAvailable: 8<<30 + 10<<20, Functions: 2, Labels: map[string]string{"zone": "b"}},
	}
	cases := []struct {
		constraints []string
		want        string // "" : no box fits
	}{
		{nil, "fl2"}, // fl3 has as much memory (within 64 MiB) but more functions
		{[]string{"node.hostname == fl1"}, "fl1"},
		{[]string{"node.hostname==fl3"}, "fl3"},
		{[]string{"kubernetes.io/hostname=fl1"}, "fl1"},
		{[]string{"node.hostname != fl2"}, "fl3"},
		{[]string{"node.labels.zone == a"}, "fl1"},
		{[]string{"zone=b"}, "fl2"},
		{[]string{"node.labels.zone == b", "node.labels.gpu != yes"}, "fl3"},
		{[]string{"node.hostname == fl9"}, ""},
		{[]string{"node.labels.gpu == no"}, ""},
	}
	for _, c := range cases {
		b, why, err := Place(boxes, c.constraints)
		if c.want == "" {
			if err == nil {
				t.Errorf("%q: placed on %s, want no box", c.constraints, b.Name)
			}
			continue
		}
		if err != nil || b.Name != c.want {
			t.Errorf("%q: got %s (%v), want %s", c.constraints, b.Name, err, c.want)
		}
		if len(c.constraints) > 0 && !strings.Contains(why, "constraints") {
			t.Errorf("%q: reason %q does not name the constraints", c.constraints, why)
		}
	}
	// Free memory first.
	boxes[0].MemAvailable = 16 << 30
	if b, why, _ := Place(boxes, nil); b.Name != "fl1" || !strings.Contains(why, "most free memory") {
		t.Errorf("got %s (%s), want fl1 by free memory", b.Name, why)
	}
	if _, _, err := Place(boxes, []string{"node.hostname"}); err == nil {
		t.Error("a constraint without an operator was accepted")
	}
}

func TestSealOpen(t *testing.T) {
	k1, k2 := make([]byte, 32), make([]byte, 32)
	k2[0] = 1
	sealed, err := seal(k1, "openfaas-fn.db", []byte(`{"name":"db","value":"hunter2"}`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), "hunter2") {
		t.Fatal("the sealed secret contains its value")
	}
	if plain, err := open(k1, "openfaas-fn.db", sealed); err != nil || !strings.Contains(string(plain), "hunter2") {
		t.Fatalf("open with the key: %q, %v", plain, err)
	}
	if _, err := open(k2, "openfaas-fn.db", sealed); err == nil {
		t.Error("opened with another key")
	}
	if _, err := open(k1, "openfaas-fn.other", sealed); err == nil {
		t.Error("opened under another name")
	}
}
