// Package deploy holds no code: its test validates the deployment files
// offline, with the real schemas a deployment would meet. Kubernetes
// manifests decode strictly into the k8s.io/api types (an unknown or
// misspelled field fails); the compose file loads through compose-go, the
// library behind `docker compose config`, which checks it against the
// Compose specification's schema.
package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// strict decodes a YAML document into out, refusing unknown fields.
func strict(doc []byte, out any) error {
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	return dec.Decode(out)
}

func documents(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var docs [][]byte
	for _, d := range bytes.Split(b, []byte("\n---\n")) {
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, append(d, '\n'))
		}
	}
	return docs
}

func TestKubernetesManifests(t *testing.T) {
	var (
		cm     corev1.ConfigMap
		deploy appsv1.StatefulSet
		svc    corev1.Service
		pdb    policyv1.PodDisruptionBudget
		hpa    autoscalingv2.HorizontalPodAutoscaler
	)
	kinds := map[string]any{"ConfigMap": &cm, "StatefulSet": &deploy, "Service": &svc, "PodDisruptionBudget": &pdb,
		"HorizontalPodAutoscaler": &hpa}
	seen := map[string]bool{}
	for i, doc := range documents(t, "kubernetes/decisiontrace.yaml") {
		var meta struct{ Kind string }
		require.NoError(t, yaml.Unmarshal(doc, &meta), "document %d", i)
		out, ok := kinds[meta.Kind]
		require.True(t, ok, "document %d: unexpected kind %q", i, meta.Kind)
		require.NoError(t, strict(doc, out), "document %d (%s)", i, meta.Kind)
		seen[meta.Kind] = true
	}
	require.Len(t, seen, len(kinds), "every kind once")

	local, err := os.ReadFile("local/collector.yaml")
	require.NoError(t, err)
	assert.Equal(t, string(local), cm.Data["collector.yaml"], "the ConfigMap's collector.yaml is deploy/local/collector.yaml; copy it over")
	auth, err := os.ReadFile("local/auth.yaml")
	require.NoError(t, err)
	assert.Equal(t, string(auth), cm.Data["auth.yaml"], "the ConfigMap's auth.yaml is deploy/local/auth.yaml; copy it over")

	pod := deploy.Spec.Template
	require.Len(t, pod.Spec.Containers, 1)
	c := pod.Spec.Containers[0]
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	// The ports the shipped configuration listens on.
	assert.Equal(t, map[string]int32{"otlp-grpc": 4317, "otlp-http": 4318, "events-json": 4320, "metrics": 8888, "health": 13133}, ports)
	for _, probe := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
		require.NotNil(t, probe)
		require.NotNil(t, probe.HTTPGet, "probes ask the health_check extension")
		assert.Equal(t, intstr.FromString("health"), probe.HTTPGet.Port)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	assert.Equal(t, "0.0.0.0", env["DECISIONTRACE_LISTEN_HOST"].Value, "listening beyond the pod's loopback")
	require.NotNil(t, env["CLICKHOUSE_PASSWORD"].ValueFrom, "the password comes from a Secret")
	assert.Empty(t, env["CLICKHOUSE_PASSWORD"].Value)
	assert.False(t, c.Resources.Limits.Memory().IsZero(), "a memory limit")
	assert.False(t, c.Resources.Requests.Cpu().IsZero(), "a CPU request")
	require.NotNil(t, pod.Spec.SecurityContext.RunAsNonRoot)
	assert.True(t, *pod.Spec.SecurityContext.RunAsNonRoot)
	assert.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	assert.Equal(t, "/etc/decisiontrace/config", mounts["config"])
	assert.Equal(t, []string{"--config", "/etc/decisiontrace/config/collector.yaml", "--config", "/etc/decisiontrace/config/auth.yaml"}, c.Args,
		"every ingest endpoint requires the bearer token")
	assert.Equal(t, "/etc/decisiontrace/token", mounts["ingest-token"])
	assert.Equal(t, "/etc/decisiontrace/token/token", env["DECISIONTRACE_TOKEN_FILE"].Value, "the token comes from a file")
	var tokenFromSecret bool
	for _, v := range pod.Spec.Volumes {
		tokenFromSecret = tokenFromSecret || v.Name == "ingest-token" && v.Secret != nil && v.Secret.SecretName == "decisiontrace-ingest-token"
	}
	assert.True(t, tokenFromSecret, "the token file is a Secret's")
	assert.Equal(t, "/var/lib/decisiontrace", mounts["queue"], "the queue directory is writable (the root filesystem is not)")
	// The queue is a volume of each collector's own, which outlives the
	// pod: what it acknowledged survives a rescheduling.
	require.Len(t, deploy.Spec.VolumeClaimTemplates, 1)
	assert.Equal(t, "queue", deploy.Spec.VolumeClaimTemplates[0].Name)
	for _, v := range pod.Spec.Volumes {
		assert.NotEqual(t, "queue", v.Name, "not an emptyDir")
	}
	require.NotNil(t, c.Lifecycle, "a pause before stopping lets the queue empty")
	require.NotNil(t, c.Lifecycle.PreStop.Sleep)
	assert.Greater(t, *pod.Spec.TerminationGracePeriodSeconds, c.Lifecycle.PreStop.Sleep.Seconds)

	labels := pod.Labels
	for what, sel := range map[string]map[string]string{"deployment": deploy.Spec.Selector.MatchLabels,
		"service": svc.Spec.Selector, "pdb": pdb.Spec.Selector.MatchLabels} {
		for k, v := range sel {
			assert.Equal(t, v, labels[k], "%s selects the collector's pods", what)
		}
	}
	for _, p := range svc.Spec.Ports {
		_, ok := ports[p.TargetPort.StrVal]
		assert.True(t, ok, "service port %s targets a container port", p.Name)
	}
	// Stateless collectors: two or more behind the Service, scaled by the
	// autoscaler, drained one at a time.
	assert.Equal(t, int32(2), *deploy.Spec.Replicas)
	assert.Equal(t, svc.Name, deploy.Spec.ServiceName)
	require.NotNil(t, pdb.Spec.MaxUnavailable)
	assert.Equal(t, 1, pdb.Spec.MaxUnavailable.IntValue())
	assert.Equal(t, autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: deploy.Name}, hpa.Spec.ScaleTargetRef)
	require.NotNil(t, hpa.Spec.MinReplicas)
	assert.Equal(t, *deploy.Spec.Replicas, *hpa.Spec.MinReplicas)
	assert.Greater(t, hpa.Spec.MaxReplicas, *hpa.Spec.MinReplicas)
	require.NotEmpty(t, hpa.Spec.Metrics)
}

// The ClickHouseInstallation is a custom resource of the Altinity operator,
// which k8s.io/api does not know: it is checked for the names the collector
// relies on.
func TestClickHouseInstallationExample(t *testing.T) {
	docs := documents(t, "kubernetes/clickhouse/clickhouse-installation.yaml")
	require.Len(t, docs, 1)
	var chi struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct{ Name string }
		Spec       struct {
			Configuration struct {
				Users    map[string]any `json:"users"`
				Clusters []struct {
					Name   string `json:"name"`
					Layout struct {
						ShardsCount   int `json:"shardsCount"`
						ReplicasCount int `json:"replicasCount"`
					} `json:"layout"`
				} `json:"clusters"`
			} `json:"configuration"`
		} `json:"spec"`
	}
	require.NoError(t, yaml.Unmarshal(docs[0], &chi))
	assert.Equal(t, "clickhouse.altinity.com/v1", chi.APIVersion)
	assert.Equal(t, "ClickHouseInstallation", chi.Kind)
	// The operator's service is clickhouse-<name>: the collector's DSN host.
	local := documents(t, "kubernetes/decisiontrace.yaml")
	assert.Contains(t, string(bytes.Join(local, nil)), "clickhouse://clickhouse-"+chi.Metadata.Name+":9000")
	assert.Contains(t, chi.Spec.Configuration.Users, "decisiontrace/k8s_secret_password")
}

func TestComposeFile(t *testing.T) {
	ctx := context.Background()
	opts, err := cli.NewProjectOptions([]string{"compose/compose.yaml"},
		cli.WithName("decisiontrace"), cli.WithEnv([]string{"CLICKHOUSE_PASSWORD=from-the-environment", "GRAFANA_ADMIN_PASSWORD=also", "DECISIONTRACE_INGEST_TOKEN=t"}))
	require.NoError(t, err)
	project, err := opts.LoadProject(ctx)
	require.NoError(t, err)
	for _, name := range []string{"clickhouse", "collector", "alertmanager", "grafana", "loadgen"} {
		_, err := project.GetService(name)
		assert.NoError(t, err, "service %s", name)
	}
	collector, err := project.GetService("collector")
	require.NoError(t, err)
	require.NotNil(t, collector.Build)
	assert.FileExists(t, filepath.Join(collector.Build.Context, collector.Build.Dockerfile))
	assert.Equal(t, "clickhouse://clickhouse:9000", *collector.Environment["DECISIONTRACE_CLICKHOUSE_DSN"])
	// The collector requires the ingest token (the image's default
	// configuration, deploy/local/auth.yaml over collector.yaml); the
	// generator sends it.
	for _, name := range []string{"collector", "loadgen"} {
		svc, err := project.GetService(name)
		require.NoError(t, err)
		require.Len(t, svc.Secrets, 1, name)
		assert.Equal(t, "decisiontrace_ingest_token", svc.Secrets[0].Source, name)
	}
	assert.Equal(t, "DECISIONTRACE_INGEST_TOKEN", project.Secrets["decisiontrace_ingest_token"].Environment)
	// Every file or directory the services mount is in the repository.
	for _, svc := range project.Services {
		for _, v := range svc.Volumes {
			if v.Type == "bind" {
				_, err := os.Stat(v.Source)
				assert.NoError(t, err, "%s mounts %s", svc.Name, v.Source)
			}
		}
	}

	// Without the password in the environment, the file says what is missing.
	opts, err = cli.NewProjectOptions([]string{"compose/compose.yaml"}, cli.WithName("decisiontrace"), cli.WithEnv([]string{"GRAFANA_ADMIN_PASSWORD=set", "DECISIONTRACE_INGEST_TOKEN=t"}))
	require.NoError(t, err)
	_, err = opts.LoadProject(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "set CLICKHOUSE_PASSWORD in the environment")
	opts, err = cli.NewProjectOptions([]string{"compose/compose.yaml"}, cli.WithName("decisiontrace"),
		cli.WithEnv([]string{"GRAFANA_ADMIN_PASSWORD=set", "CLICKHOUSE_PASSWORD=set"}))
	require.NoError(t, err)
	_, err = opts.LoadProject(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "set DECISIONTRACE_INGEST_TOKEN in the environment")
}

// Every COPY of the Dockerfile names something its ignore file lets in and
// the repository has.
func TestDockerfileCopiesExist(t *testing.T) {
	f, err := os.Open("docker/Dockerfile")
	require.NoError(t, err)
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || fields[0] != "COPY" || strings.HasPrefix(fields[1], "--from") {
			continue
		}
		for _, src := range fields[1 : len(fields)-1] {
			if strings.HasPrefix(src, "--") {
				continue
			}
			_, err := os.Stat(filepath.Join("..", src))
			assert.NoError(t, err, "COPY %s", src)
			n++
		}
	}
	require.NoError(t, sc.Err())
	assert.Greater(t, n, 5, fmt.Sprint("COPY lines read: ", n))
}
