package server

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// TestParsePublishForm checks that the map-free parser reads every body as
// url.ParseQuery does: same fields, same first values, same errors.
func TestParsePublishForm(t *testing.T) {
	tests := []struct{ name, body string }{
		{"empty", ""},
		{"simple", "topic=a&data=hello"},
		{"topics in order", "topic=b&topic=a&topic=c"},
		{"first single value wins", "id=1&id=2&type=x&type=y&data=d1&data=d2&retry=5&retry=6"},
		{"escaped values", "topic=https%3A%2F%2Fex.com%2F%7Bx%7D&data=a+b%0Ac"},
		{"escaped keys", "to%70ic=a&d%61ta=x&priv%61te"},
		{"private without value", "topic=a&private"},
		{"private empty", "topic=a&private="},
		{"empty pairs", "&&topic=a&&=&=x&"},
		{"no equals", "topic&data"},
		{"equals in value", "topic=a=b&data==="},
		{"unknown fields", "foo=bar&topic=a&baz"},
		{"bad escape in value", "topic=a&data=%zz"},
		{"bad escape in key", "t%zzopic=a"},
		{"bad escape in unknown field", "topic=a&foo=%"},
		{"semicolon", "topic=a;data=b"},
		{"semicolon in value", "topic=a&data=x;y"},
		{"many fields", strings.Repeat("topic=t&", 100) + "data=x"},
		{"many fields with error", strings.Repeat("x=1&", 100) + "data=%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, gotErr := parsePublishForm(tt.body)
			want, wantErr := publishFormFromValues(url.ParseQuery(tt.body))
			if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
				t.Fatalf("error %v; want %v", gotErr, wantErr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v; want %+v", got, want)
			}
		})
	}
}
