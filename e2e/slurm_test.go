package e2e

// Issue 13 on a real engine: a single-node Slurm from Debian's slurm-wlm
// and munge (`make slurm` installs them), started without systemd: munged
// on a socket in a temporary directory, slurmctld and `slurmd -N
// localhost` directly, everything on 127.0.0.1. The test stops its
// daemons however it ends.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// slurmWait bounds each wait on the cluster (a 4-task array and its merge
// take about 10 s here).
const slurmWait = 90 * time.Second

// slurmCluster is one controller and one node, configured in dir.
type slurmCluster struct {
	dir string
	env []string // SLURM_CONF for the client commands
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// daemon starts a program in the foreground of its own process group and
// stops it (SIGTERM, then SIGKILL) when the test ends.
func daemon(t *testing.T, env []string, log string, name string, args ...string) {
	t.Helper()
	out, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		out.Close()
		close(done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
}

// poll calls cond until it holds or slurmWait passes.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(slurmWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, slurmWait)
		}
		time.Sleep(100 * time.Millisecond) // polling an outside daemon's state, not synchronising goroutines
	}
}

func startSlurm(t *testing.T) *slurmCluster {
	t.Helper()
	for _, p := range []string{"munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo"} {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed: CI must install it (make slurm installs slurm-wlm and munge): %v", p, err)
			}
			t.Skipf("%s not installed (make slurm installs slurm-wlm and munge): %v", p, err)
		}
	}
	// A short path: munged's and slurmd's sockets live under it.
	dir, err := os.MkdirTemp("/tmp", "kps")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"state", "spool"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	key, sock := filepath.Join(dir, "munge.key"), filepath.Join(dir, "munge.sock")
	if out, err := exec.Command("mungekey", "-c", "-k", key).CombinedOutput(); err != nil {
		t.Fatalf("mungekey: %v\n%s", err, out)
	}
	daemon(t, os.Environ(), filepath.Join(dir, "munged.out"), "munged", "--foreground", "--force",
		"--socket="+sock, "--key-file="+key, "--pid-file="+filepath.Join(dir, "munged.pid"),
		"--log-file="+filepath.Join(dir, "munged.log"), "--seed-file="+filepath.Join(dir, "munge.seed"))
	poll(t, "munged socket", func() bool { _, err := os.Stat(sock); return err == nil })

	conf := filepath.Join(dir, "slurm.conf")
	text := fmt.Sprintf(`ClusterName=kneepipe
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=%d
SlurmdPort=%d
SlurmUser=%s
AuthType=auth/munge
AuthInfo=socket=%s
CredType=cred/munge
StateSaveLocation=%s/state
SlurmdSpoolDir=%s/spool
SlurmctldPidFile=%s/slurmctld.pid
SlurmdPidFile=%s/slurmd.pid
SlurmctldLogFile=%s/slurmctld.log
SlurmdLogFile=%s/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
MinJobAge=600
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
`, freePort(t), freePort(t), currentUser(t), sock, dir, dir, dir, dir, dir, dir)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &slurmCluster{dir: dir, env: append(os.Environ(), "SLURM_CONF="+conf)}
	daemon(t, s.env, filepath.Join(dir, "slurmctld.out"), "slurmctld", "-D", "-i")
	daemon(t, s.env, filepath.Join(dir, "slurmd.out"), "slurmd", "-D", "-N", "localhost")
	poll(t, "node idle", func() bool { return s.try("sinfo", "-h", "-o", "%t") == "idle" })
	return s
}

func currentUser(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("id", "-un").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// try runs a client command and returns its trimmed output ("" on error).
func (s *slurmCluster) try(name string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = s.env
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// sbatch submits a batch script with env added and returns the job id.
func (s *slurmCluster) sbatch(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("sbatch", append([]string{"--parsable", "--chdir", s.dir}, args...)...)
	cmd.Env = append(append([]string{}, s.env...), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sbatch %v: %v\n%s", args, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// await waits until none of the job's tasks is pending or running, and
// returns the state of each (from scontrol: no accounting here).
func (s *slurmCluster) await(t *testing.T, job string) []string {
	t.Helper()
	poll(t, "job "+job+" to end", func() bool {
		out := s.try("squeue", "-h", "-j", job, "-o", "%T")
		return out == "" && s.try("scontrol", "show", "job", job) != ""
	})
	return s.states(job)
}

func (s *slurmCluster) states(job string) []string {
	var states []string
	for _, f := range strings.Fields(s.try("scontrol", "show", "job", job)) {
		if v, ok := strings.CutPrefix(f, "JobState="); ok {
			states = append(states, v)
		}
	}
	return states
}

func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

func TestSlurmShardedRun(t *testing.T) {
	s := startSlurm(t)
	srv := scratchServer(t)
	bkt, _ := sampleBucket(t, srv, "e2e-slurm")
	one := filepath.Join(t.TempDir(), "one")
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, pipelineFile, one, filepath.Join(t.TempDir(), "cache")), 0, "one-machine run")

	// Shard 2 cannot read one of its objects the first time.
	const n = 4
	victim := victimOf(t, 2, n)
	proxy := newFaultProxy(t, srv.endpoint, bkt)
	proxy.fail(victim, fault403)
	work := filepath.Join(s.dir, "work") // a directory all nodes share
	merged := filepath.Join(s.dir, "merged")
	wantCode(t, kneepipe(t, srvEnv(srv), shardArgs("plan", proxy.URL, bkt, work, "--shards", fmt.Sprint(n), "--cache", filepath.Join(s.dir, "plan-cache"))...), 0, "shard plan")
	env := append(srvEnv(srv),
		"KNEEPIPE="+binary, "KNEEPIPE_FILE="+repoPath(pipelineFile), "KNEEPIPE_WORK="+work,
		fmt.Sprintf("KNEEPIPE_SHARDS=%d", n), "KNEEPIPE_OUT="+merged, "KNEEPIPE_CACHE="+filepath.Join(s.dir, "merge-cache"),
		"KNEEPIPE_SOURCE=s3://"+bkt+"/"+prefix, "KNEEPIPE_ENDPOINT="+proxy.URL, "KNEEPIPE_REGION="+region,
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_EC2_METADATA_DISABLED=true")
	shardScript, mergeScript := repoPath("deploy/slurm/shard.sbatch"), repoPath("deploy/slurm/merge.sbatch")
	array := s.sbatch(t, env, fmt.Sprintf("--array=0-%d", n-1), "--output", filepath.Join(s.dir, "shard-%A_%a.out"), shardScript)
	merge := s.sbatch(t, env, "--dependency=afterok:"+array, "--output", filepath.Join(s.dir, "merge-%j.out"), mergeScript)
	states := s.await(t, array)
	if count(states, "COMPLETED") != n-1 || count(states, "FAILED") != 1 {
		t.Fatalf("array %s ended %v, want 3 COMPLETED and shard 2 FAILED\n%s", array, states, slurmLog(s.dir, "shard-*"))
	}
	poll(t, "the merge to wait for good", func() bool {
		return s.try("squeue", "-h", "-j", merge, "-o", "%r") == "DependencyNeverSatisfied"
	})
	s.try("scancel", merge)
	if _, err := os.Stat(filepath.Join(merged, "run.json")); err == nil {
		t.Fatal("the merge ran after a shard failed")
	}

	// Shard 2 alone again, then a merge after it.
	proxy.fail(victim, faultNone)
	again := s.sbatch(t, env, "--array=2", "--output", filepath.Join(s.dir, "again-%A_%a.out"), shardScript)
	merge = s.sbatch(t, env, "--dependency=afterok:"+again, "--output", filepath.Join(s.dir, "merge-%j.out"), mergeScript)
	if st := s.await(t, again); len(st) != 1 || st[0] != "COMPLETED" {
		t.Fatalf("shard 2 again: %v\n%s", st, slurmLog(s.dir, "again-*"))
	}
	if st := s.await(t, merge); len(st) != 1 || st[0] != "COMPLETED" {
		t.Fatalf("merge: %v\n%s", st, slurmLog(s.dir, "merge-*"))
	}
	sameOutputs(t, one, merged)
	rep := readReport(t, merged)
	if o := rep.Objects; o.Listed != sampleObjects || o.Failed != 0 || o.Listed != o.Accepted+o.Rejected+o.Failed {
		t.Errorf("merged accounting: %+v", o)
	}
}

// slurmLog is the jobs' output, for a failure message.
func slurmLog(dir, glob string) string {
	files, _ := filepath.Glob(filepath.Join(dir, glob))
	var b strings.Builder
	for _, f := range files {
		data, _ := os.ReadFile(f)
		fmt.Fprintf(&b, "== %s\n%s", filepath.Base(f), data)
	}
	return b.String()
}
