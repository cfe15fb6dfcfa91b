// SPDX-License-Identifier: Apache-2.0

// chartrender renders a Helm chart the way `helm template` does, with the same
// engine: Go's text/template, the sprig functions, and Helm's own (include,
// tpl, required, toYaml, fromYaml, toJson, fromJson, lookup), the built-in
// objects (.Values, .Release, .Chart, .Capabilities, .Files, .Template) and
// Helm's handling of missing keys. Helm itself is not installable here; this
// is built offline from Debian's packages (golang-1.19-go,
// golang-github-masterminds-sprig-dev, golang-k8s-sigs-yaml-dev) in GOPATH mode.
//
//	chartrender [-f values.yaml]... [--set a.b=c]... [--kube-version v1.20.2]
//	            [--api-versions policy/v1]... [--namespace NS] [--name RELEASE]
//	            [--notes] CHART_DIR
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"sigs.k8s.io/yaml"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// APIVersions answers .Capabilities.APIVersions.Has "group/version" (or
// "group/version/Kind").
type APIVersions []string

func (a APIVersions) Has(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

type KubeVersion struct {
	Version, Major, Minor, GitVersion string
}

func (k KubeVersion) String() string { return k.Version }

type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions APIVersions
}

// Files gives templates the chart's other files, as Helm's .Files does.
type Files map[string][]byte

func (f Files) Get(name string) string { return string(f[name]) }
func (f Files) GetBytes(name string) []byte { return f[name] }
func (f Files) Glob(pattern string) Files {
	out := Files{}
	for k, v := range f {
		if ok, _ := path.Match(pattern, k); ok {
			out[k] = v
		}
	}
	return out
}

// The API versions of a v1.20 server (from what `kubectl api-versions` lists there).
var defaultAPIVersions = []string{
	"v1", "apps/v1", "batch/v1", "batch/v1beta1", "policy/v1beta1",
	"rbac.authorization.k8s.io/v1", "coordination.k8s.io/v1", "apiextensions.k8s.io/v1",
	"networking.k8s.io/v1", "scheduling.k8s.io/v1", "storage.k8s.io/v1",
	"admissionregistration.k8s.io/v1", "authentication.k8s.io/v1", "authorization.k8s.io/v1",
	"autoscaling/v1", "autoscaling/v2beta2",
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "chartrender: "+format+"\n", args...)
	os.Exit(1)
}

func toYaml(v interface{}) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

func fromYaml(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func toJson(v interface{}) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

func fromJson(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

// mergeValues merges src into dst, maps deeply, as Helm merges values files.
func mergeValues(dst, src map[string]interface{}) map[string]interface{} {
	for k, v := range src {
		if sm, ok := v.(map[string]interface{}); ok {
			if dm, ok := dst[k].(map[string]interface{}); ok {
				dst[k] = mergeValues(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
	return dst
}

// setValue applies one --set a.b.c=value (true/false/numbers typed, as Helm does).
func setValue(vals map[string]interface{}, expr string) error {
	eq := strings.Index(expr, "=")
	if eq <= 0 {
		return fmt.Errorf("--set %s: want key=value", expr)
	}
	keys := strings.Split(expr[:eq], ".")
	raw := expr[eq+1:]
	var v interface{} = raw
	if raw == "true" || raw == "false" {
		v = raw == "true"
	} else if raw == "null" {
		v = nil
	} else if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
		v = n
	}
	m := vals
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]interface{})
		if !ok {
			next = map[string]interface{}{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = v
	return nil
}

func readYamlFile(p string) map[string]interface{} {
	b, err := os.ReadFile(p)
	if err != nil {
		fail("%v", err)
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(b, &m); err != nil {
		fail("%s: %v", p, err)
	}
	return m
}

func main() {
	var valueFiles, sets, apiVersions multi
	kubeVersion := flag.String("kube-version", "v1.20.2", "the Kubernetes version templates see")
	namespace := flag.String("namespace", "default", "the release's namespace")
	name := flag.String("name", "profleet", "the release name")
	notes := flag.Bool("notes", false, "print the rendered NOTES.txt instead of the manifests")
	flag.Var(&valueFiles, "f", "a values file (repeatable; later ones win)")
	flag.Var(&sets, "set", "key=value (repeatable)")
	flag.Var(&apiVersions, "api-versions", "an API version the cluster serves (repeatable; default: those of v1.20)")
	flag.Parse()
	if flag.NArg() != 1 {
		fail("usage: chartrender [options] CHART_DIR")
	}
	dir := flag.Arg(0)
	chart := readYamlFile(filepath.Join(dir, "Chart.yaml"))
	vals := readYamlFile(filepath.Join(dir, "values.yaml"))
	for _, f := range valueFiles {
		vals = mergeValues(vals, readYamlFile(f))
	}
	for _, s := range sets {
		if err := setValue(vals, s); err != nil {
			fail("%v", err)
		}
	}
	if len(apiVersions) == 0 {
		apiVersions = defaultAPIVersions
	}
	kv := strings.TrimPrefix(*kubeVersion, "v")
	parts := strings.SplitN(kv, ".", 3)
	if len(parts) < 2 {
		fail("--kube-version %s: want vMAJOR.MINOR.PATCH", *kubeVersion)
	}
	files := Files{}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			if !strings.HasPrefix(rel, "templates/") {
				b, _ := os.ReadFile(p)
				files[rel] = b
			}
		}
		return nil
	})
	str := func(k string) string { s, _ := chart[k].(string); return s }
	top := map[string]interface{}{
		"Values": vals,
		"Release": map[string]interface{}{
			"Name": *name, "Namespace": *namespace, "Service": "Helm",
			"IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
		"Chart": map[string]interface{}{
			"Name": str("name"), "Version": str("version"), "AppVersion": str("appVersion"),
			"Description": str("description"),
		},
		"Capabilities": Capabilities{
			KubeVersion: KubeVersion{Version: "v" + kv, Major: parts[0], Minor: parts[1],
				GitVersion: "v" + kv},
			APIVersions: APIVersions(apiVersions),
		},
		"Files": files,
	}

	t := template.New("chart")
	funcs := sprig.TxtFuncMap()
	// Helm's own functions; include and tpl need the template set itself
	funcs["toYaml"] = toYaml
	funcs["fromYaml"] = fromYaml
	funcs["toJson"] = toJson
	funcs["fromJson"] = fromJson
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return nil, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return nil, errors.New(msg)
		}
		return v, nil
	}
	funcs["lookup"] = func(string, string, string, string) map[string]interface{} {
		return map[string]interface{}{} // as helm template: no cluster
	}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		var b bytes.Buffer
		err := t.ExecuteTemplate(&b, name, data)
		return b.String(), err
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		tt, err := t.Clone()
		if err != nil {
			return "", err
		}
		tt, err = tt.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var b bytes.Buffer
		err = tt.Execute(&b, data)
		return strings.ReplaceAll(b.String(), "<no value>", ""), err
	}
	t.Funcs(funcs).Option("missingkey=zero")

	var names []string
	tdir := filepath.Join(dir, "templates")
	filepath.Walk(tdir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	sort.Strings(names)
	for _, p := range names {
		b, err := os.ReadFile(p)
		if err != nil {
			fail("%v", err)
		}
		rel, _ := filepath.Rel(dir, p)
		if _, err := t.New(path.Join(str("name"), rel)).Parse(string(b)); err != nil {
			fail("%v", err)
		}
	}
	out := os.Stdout
	for _, p := range names {
		rel, _ := filepath.Rel(dir, p)
		base := filepath.Base(p)
		isNotes := base == "NOTES.txt"
		if strings.HasPrefix(base, "_") || isNotes != *notes {
			continue
		}
		tname := path.Join(str("name"), rel)
		top["Template"] = map[string]interface{}{"Name": tname, "BasePath": path.Join(str("name"), "templates")}
		var b bytes.Buffer
		if err := t.ExecuteTemplate(&b, tname, top); err != nil {
			fail("%v", err)
		}
		s := strings.ReplaceAll(b.String(), "<no value>", "")
		if strings.TrimSpace(s) == "" {
			continue
		}
		if isNotes {
			fmt.Fprint(out, s)
			continue
		}
		fmt.Fprintf(out, "---\n# Source: %s\n%s\n", tname, strings.TrimSpace(s))
	}
}
