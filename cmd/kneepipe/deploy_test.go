package main

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The engines' files in deploy/ cannot run here (no Airflow, no
// Kubernetes); these tests check what can be checked: they parse, and the
// kneepipe commands they run are valid invocations of this kneepipe.

// checkInvocation parses args as kneepipe's command line would, without
// running it, and checks the shard flags; env is the task's environment.
func checkInvocation(t *testing.T, where string, args []string, env map[string]string) {
	t.Helper()
	root := newApp(io.Discard, io.Discard).command()
	cmd, rest, err := root.Find(args)
	if err != nil || !strings.HasPrefix(cmd.CommandPath(), "kneepipe shard ") {
		t.Errorf("%s: %v is no kneepipe shard command (%v)", where, args, err)
		return
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Errorf("%s: %v: %v", where, args, err)
		return
	}
	if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
		t.Errorf("%s: %v: %v", where, args, err)
	}
	f := cmd.Flags()
	if w, _ := f.GetString("work"); w == "" {
		t.Errorf("%s: %v has no --work", where, args)
	}
	switch cmd.Name() {
	case "plan":
		if n, _ := f.GetInt("shards"); n < 1 {
			t.Errorf("%s: plan without --shards", where)
		}
	case "run":
		spec, _ := f.GetString("shard")
		from, _ := f.GetString("shard-index-from")
		n, _ := f.GetInt("shards")
		lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		if _, err := shardIndex(spec, from, n, lookup); err != nil {
			t.Errorf("%s: %v: %v", where, args, err)
		}
	}
}

func TestDeployKubernetes(t *testing.T) {
	type container struct {
		Args []string
		Env  []struct{ Name, Value string }
	}
	type job struct {
		Kind     string
		Metadata struct{ Name string }
		Spec     struct {
			CompletionMode string `yaml:"completionMode"`
			Completions    int
			Template       struct {
				Spec struct{ Containers []container }
			}
		}
	}
	f, err := os.Open("../../deploy/kubernetes/sharded.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var names []string
	ref := regexp.MustCompile(`\$\(([A-Z_]+)\)`)
	for {
		var j job
		if err := dec.Decode(&j); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("sharded.yaml: %v", err)
		}
		names = append(names, j.Metadata.Name)
		for _, c := range j.Spec.Template.Spec.Containers {
			env := map[string]string{}
			for _, e := range c.Env {
				env[e.Name] = e.Value
			}
			args := make([]string, len(c.Args))
			for i, a := range c.Args { // Kubernetes expands $(VAR) from the container's env
				args[i] = ref.ReplaceAllStringFunc(a, func(m string) string { return env[m[2:len(m)-1]] })
			}
			if j.Spec.CompletionMode == "Indexed" {
				env["JOB_COMPLETION_INDEX"] = strconv.Itoa(j.Spec.Completions - 1)
				if n, _ := strconv.Atoi(env["SHARDS"]); n != j.Spec.Completions {
					t.Errorf("%s: %d completions for %d shards", j.Metadata.Name, j.Spec.Completions, n)
				}
			}
			checkInvocation(t, "sharded.yaml "+j.Metadata.Name, args, env)
		}
	}
	if strings.Join(names, " ") != "kneepipe-plan kneepipe-shards kneepipe-merge" {
		t.Errorf("sharded.yaml holds Jobs %v", names)
	}
}

func TestDeployAirflow(t *testing.T) {
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no %s: CI must have Debian's python3: %v", py, err)
		}
		t.Skipf("no %s: %v", py, err)
	}
	dag := "../../deploy/airflow/kneepipe_sharded.py"
	// Compile it (syntax) and read its literal *_ARGS lists (no Airflow
	// needed): the commands the DAG runs.
	script := `import ast, json, py_compile, sys
py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)
env = {}
for node in ast.parse(open(sys.argv[1]).read()).body:
    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
        name = node.targets[0].id
        try:
            env[name] = eval(compile(ast.Expression(node.value), "", "eval"), {"str": str}, env)
        except Exception:
            pass
print(json.dumps({k: v for k, v in env.items() if k.endswith("_ARGS") or k == "SHARDS"}))`
	out, err := exec.Command(py, "-c", script, dag, filepath.Join(t.TempDir(), "dag.pyc")).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", dag, err, out)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("%s: %v\n%s", dag, err, out)
	}
	var shards int
	if err := json.Unmarshal(raw["SHARDS"], &shards); err != nil || shards < 1 {
		t.Fatalf("%s: SHARDS %s: %v", dag, raw["SHARDS"], err)
	}
	for _, name := range []string{"PLAN_ARGS", "SHARD_ARGS", "MERGE_ARGS"} {
		var args []string
		if err := json.Unmarshal(raw[name], &args); err != nil || len(args) == 0 {
			t.Errorf("%s: %s: %v", dag, name, err)
			continue
		}
		for i, a := range args {
			args[i] = strings.ReplaceAll(a, "{{ ds }}", "2026-01-01") // Airflow's template
		}
		checkInvocation(t, "Airflow DAG "+name, args, map[string]string{"KNEEPIPE_SHARD": strconv.Itoa(shards - 1)})
	}
}

func TestDeploySlurm(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "kneepipe")
	// A stand-in kneepipe that records its arguments.
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$ARGS_FILE\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SLURM_ARRAY_TASK_ID": "3"}
	for _, script := range []string{"shard.sbatch", "merge.sbatch"} {
		argsFile := filepath.Join(dir, script+".args")
		cmd := exec.Command("bash", "../../deploy/slurm/"+script)
		cmd.Env = append(os.Environ(), "KNEEPIPE="+fake, "ARGS_FILE="+argsFile, "KNEEPIPE_WORK=/shared/work",
			"KNEEPIPE_SHARDS=4", "SLURM_ARRAY_TASK_ID=3")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", script, err, out)
			continue
		}
		data, err := os.ReadFile(argsFile)
		if err != nil {
			t.Fatal(err)
		}
		checkInvocation(t, script, strings.Split(strings.TrimSuffix(string(data), "\n"), "\n"), env)
	}
	// Without KNEEPIPE_WORK a script says what to set, and runs nothing.
	cmd := exec.Command("bash", "../../deploy/slurm/shard.sbatch")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "KNEEPIPE=" + fake}
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "set KNEEPIPE_WORK") {
		t.Errorf("shard.sbatch without KNEEPIPE_WORK: %v\n%s", err, out)
	}
}
