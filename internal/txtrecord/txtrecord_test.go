package txtrecord

import (
	"strings"
	"testing"
)

func TestHasVersion(t *testing.T) {
	for _, tt := range []struct {
		txt  string
		want bool
	}{
		{"v=STSv1; id=1", true},
		{"v=STSv1 ; id=1", true},
		{"v=STSv1\t;id=1", true},
		{"v=STSv1", true},
		{"v=STSv10; id=1", false},
		{"v=STSv1x", false},
		{" v=STSv1; id=1", false},
		{"V=STSv1; id=1", false},
		{"", false},
	} {
		if got := HasVersion(tt.txt, "v=STSv1"); got != tt.want {
			t.Errorf("HasVersion(%q) = %v, want %v", tt.txt, got, tt.want)
		}
	}
}

func TestValidExtName(t *testing.T) {
	for _, tt := range []struct {
		s    string
		want bool
	}{
		{"a", true},
		{"9", true},
		{"ext_1-2.3", true},
		{strings.Repeat("a", 32), true},
		{strings.Repeat("a", 33), false},
		{"", false},
		{"_a", false},
		{"-a", false},
		{"a b", false},
		{"a=b", false},
		{"é", false},
	} {
		if got := ValidExtName(tt.s); got != tt.want {
			t.Errorf("ValidExtName(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestValidExtValue(t *testing.T) {
	for _, tt := range []struct {
		s    string
		want bool
	}{
		{"x", true},
		{"!:<>~", true},
		{"", false},
		{"a=b", false},
		{"a;b", false},
		{"a b", false},
		{"a\tb", false},
		{"\x7f", false},
		{"é", false},
	} {
		if got := ValidExtValue(tt.s); got != tt.want {
			t.Errorf("ValidExtValue(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestTrimWSP(t *testing.T) {
	if got := TrimWSP(" \t a "); got != "a " {
		t.Errorf("TrimWSP = %q", got)
	}
}
