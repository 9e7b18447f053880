package dev.relay.it;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import dev.relay.config.RelayConfig;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * ops/k8s, parsed (no cluster here, and kubeconform is neither packaged nor able to fetch its schemas): each object
 * has the fields its kind requires and no field outside the subset of the Kubernetes schema these files use (so a
 * misspelt key fails), and the objects agree with each other and with the relay: the container ports are the
 * ConfigMap's listen ports, the probes ask /health on the metrics port, the claim is mounted at queue.dir, the
 * drain fits in terminationGracePeriodSeconds, Services and the PodDisruptionBudget select the pods, the user is
 * the image's, and kustomization.yaml lists every file and the image of the release's version.
 */
@Timeout(30)
class KubernetesManifestsTest
{
    /** What the relay takes after the inbound drain: delivery transactions in flight (Relay.DELIVERY_DRAIN_MS). */
    private static final int DELIVERY_DRAIN_SECONDS = 5;

    /** The keys allowed at each place these files use (a subset of the API; anything else is a typo here). */
    private static final Map<String, Set<String>> KEYS = Map.ofEntries(
        Map.entry("object", Set.of("apiVersion", "kind", "metadata", "spec", "data")),
        Map.entry("metadata", Set.of("name", "labels", "annotations", "namespace")),
        Map.entry("StatefulSet.spec", Set.of("serviceName", "replicas", "podManagementPolicy", "selector",
            "persistentVolumeClaimRetentionPolicy", "template", "volumeClaimTemplates", "updateStrategy",
            "minReadySeconds", "revisionHistoryLimit")),
        Map.entry("podSpec", Set.of("terminationGracePeriodSeconds", "securityContext", "containers", "volumes",
            "affinity", "topologySpreadConstraints", "serviceAccountName", "automountServiceAccountToken")),
        Map.entry("podSecurityContext", Set.of("runAsNonRoot", "runAsUser", "runAsGroup", "fsGroup",
            "fsGroupChangePolicy", "seccompProfile")),
        Map.entry("container", Set.of("name", "image", "args", "command", "ports", "env", "startupProbe",
            "readinessProbe", "livenessProbe", "lifecycle", "resources", "securityContext", "volumeMounts",
            "imagePullPolicy")),
        Map.entry("containerPort", Set.of("name", "containerPort", "protocol")),
        Map.entry("probe", Set.of("httpGet", "periodSeconds", "timeoutSeconds", "failureThreshold",
            "successThreshold", "initialDelaySeconds")),
        Map.entry("httpGet", Set.of("path", "port", "scheme")),
        Map.entry("volumeMount", Set.of("name", "mountPath", "readOnly", "subPath")),
        Map.entry("volume", Set.of("name", "configMap", "emptyDir", "persistentVolumeClaim")),
        Map.entry("Service.spec", Set.of("type", "clusterIP", "publishNotReadyAddresses", "selector", "ports",
            "externalTrafficPolicy", "sessionAffinity")),
        Map.entry("servicePort", Set.of("name", "port", "targetPort", "protocol", "nodePort")),
        Map.entry("PodDisruptionBudget.spec", Set.of("maxUnavailable", "minAvailable", "selector")),
        Map.entry("claimSpec", Set.of("accessModes", "resources", "storageClassName")));
    private static final Set<String> KINDS = Set.of("v1/ConfigMap", "v1/Service", "apps/v1/StatefulSet",
        "policy/v1/PodDisruptionBudget");

    private static Path k8s;
    private static final Map<String, JsonNode> OBJECTS = new TreeMap<>();

    @BeforeAll
    static void parse() throws Exception
    {
        k8s = Deployment.repositoryRoot().resolve("ops/k8s");
        final YAMLMapper yaml = new YAMLMapper();
        for (final Path file : manifests())
        {
            try (MappingIterator<JsonNode> docs = yaml.readerFor(JsonNode.class).readValues(file.toFile()))
            {
                while (docs.hasNext())
                {
                    final JsonNode object = docs.next();
                    final String id = object.path("kind").asText() + "/" + object.path("metadata").path("name").asText();
                    assertTrue(OBJECTS.put(id, object) == null, "one " + id);
                }
            }
        }
    }

    private static List<Path> manifests() throws Exception
    {
        try (Stream<Path> files = Files.list(k8s))
        {
            return files.filter(p -> p.getFileName().toString().endsWith(".yaml"))
                .filter(p -> !p.getFileName().toString().equals("kustomization.yaml")).sorted()
                .collect(Collectors.toList());
        }
    }

    @Test
    void everyObjectHasItsRequiredFieldsAndNoUnknownOnes()
    {
        assertEquals(Set.of("ConfigMap/relay-config", "Service/relay", "Service/relay-pods", "StatefulSet/relay",
            "PodDisruptionBudget/relay"), OBJECTS.keySet());
        for (final Map.Entry<String, JsonNode> entry : OBJECTS.entrySet())
        {
            final JsonNode object = entry.getValue();
            final String id = entry.getKey();
            keys(object, "object", id);
            keys(object.path("metadata"), "metadata", id);
            assertTrue(KINDS.contains(object.path("apiVersion").asText() + "/" + object.path("kind").asText()), id);
            assertTrue(object.path("metadata").path("name").asText().matches("[a-z0-9]([-a-z0-9]*[a-z0-9])?"), id);
            switch (object.path("kind").asText())
            {
                case "StatefulSet":
                    checkStatefulSet(object.path("spec"), id);
                    break;
                case "Service":
                    keys(object.path("spec"), "Service.spec", id);
                    assertTrue(object.path("spec").path("ports").size() > 0, id);
                    object.path("spec").path("ports").forEach(port ->
                    {
                        keys(port, "servicePort", id);
                        assertTrue(port.path("port").isInt(), id + " port");
                    });
                    break;
                case "PodDisruptionBudget":
                    keys(object.path("spec"), "PodDisruptionBudget.spec", id);
                    assertTrue(object.path("spec").path("selector").path("matchLabels").size() > 0, id);
                    break;
                case "ConfigMap":
                    assertTrue(object.path("data").isObject(), id);
                    break;
                default:
                    fail(id);
            }
        }
    }

    private static void checkStatefulSet(final JsonNode spec, final String id)
    {
        keys(spec, "StatefulSet.spec", id);
        assertTrue(spec.path("replicas").isInt(), id);
        assertFalse(spec.path("serviceName").asText().isEmpty(), id);
        assertTrue(spec.path("selector").path("matchLabels").size() > 0, id);
        keys(spec.path("template").path("metadata"), "metadata", id);
        final JsonNode pod = spec.path("template").path("spec");
        keys(pod, "podSpec", id);
        keys(pod.path("securityContext"), "podSecurityContext", id);
        assertTrue(pod.path("containers").size() > 0, id);
        for (final JsonNode container : pod.path("containers"))
        {
            keys(container, "container", id);
            assertFalse(container.path("name").asText().isEmpty() || container.path("image").asText().isEmpty(), id);
            container.path("ports").forEach(port ->
            {
                keys(port, "containerPort", id);
                assertTrue(port.path("containerPort").isInt(), id);
            });
            for (final String probe : List.of("startupProbe", "readinessProbe", "livenessProbe"))
            {
                keys(container.path(probe), "probe", id + " " + probe);
                keys(container.path(probe).path("httpGet"), "httpGet", id + " " + probe);
            }
            container.path("volumeMounts").forEach(mount -> keys(mount, "volumeMount", id));
        }
        pod.path("volumes").forEach(volume -> keys(volume, "volume", id));
        for (final JsonNode claim : spec.path("volumeClaimTemplates"))
        {
            keys(claim.path("spec"), "claimSpec", id);
            assertTrue(claim.path("spec").path("accessModes").size() > 0, id);
            assertFalse(claim.path("spec").path("resources").path("requests").path("storage").asText().isEmpty(), id);
        }
    }

    @Test
    void podAgreesWithTheRelaysConfiguration()
    {
        final JsonNode statefulSet = OBJECTS.get("StatefulSet/relay");
        final JsonNode pod = statefulSet.path("spec").path("template").path("spec");
        final JsonNode container = pod.path("containers").get(0);

        // the ConfigMap holds the configuration the container is started with, mounted where --config points
        final JsonNode configVolume = volumeWith(pod, "configMap");
        final String configMapName = configVolume.path("configMap").path("name").asText();
        final JsonNode configMap = OBJECTS.get("ConfigMap/" + configMapName);
        assertNotNull(configMap, "ConfigMap " + configMapName);
        final String configMount = mountPath(container, configVolume.path("name").asText());
        assertEquals(List.of("--config", configMount + "/relay.properties"), strings(container.path("args")));
        final RelayConfig relay = Deployment.relayConfig(configMap.path("data").path("relay.properties").asText(),
            "ConfigMap " + configMapName + " relay.properties");

        // ports: what the relay listens on, by name
        final Map<String, Integer> ports = new TreeMap<>();
        container.path("ports").forEach(p -> ports.put(p.path("name").asText(), p.path("containerPort").asInt()));
        assertEquals(Deployment.listenPorts(relay), new TreeSet<>(ports.values()), "containerPorts = listen ports");
        assertEquals(relay.inbound().smtpListen().get(0).getPort(), ports.get("smtp"));
        final int metricsPort = relay.metrics().listen().getPort();
        assertEquals(metricsPort, ports.get("metrics"));
        assertTrue(relay.metrics().listen().getAddress().isAnyLocalAddress(), "the kubelet reaches metrics.listen");

        for (final String probe : List.of("startupProbe", "readinessProbe", "livenessProbe"))
        {
            final JsonNode get = container.path(probe).path("httpGet");
            assertEquals("/health", get.path("path").asText(), probe);
            assertEquals(metricsPort, port(get.path("port"), ports), probe + " on the metrics port");
        }

        // the claim per pod is the spool
        final JsonNode claim = statefulSet.path("spec").path("volumeClaimTemplates").get(0);
        assertEquals(relay.spool().dir().toString(), mountPath(container, claim.path("metadata").path("name").asText()),
            "the PersistentVolumeClaim is mounted at queue.dir");
        assertEquals("Retain", statefulSet.path("spec").path("persistentVolumeClaimRetentionPolicy")
            .path("whenScaled").asText(), "scaling down keeps the claim (and its queued mail)");

        // stop: the preStop pause, then SIGTERM's drain, all within the grace period
        final List<String> preStop = strings(container.path("lifecycle").path("preStop").path("exec").path("command"));
        assertEquals(2, preStop.size(), preStop::toString);
        assertEquals("sleep", preStop.get(0));
        final long pause = Long.parseLong(preStop.get(1));
        final long drain = relay.inbound().drainTimeout().toSeconds() + DELIVERY_DRAIN_SECONDS;
        final long grace = pod.path("terminationGracePeriodSeconds").asLong();
        assertTrue(grace >= pause + drain + 5, "terminationGracePeriodSeconds " + grace + " >= preStop " + pause +
            " s + drain " + drain + " s + 5 s");
    }

    @Test
    void servicesAndBudgetSelectThePodsAndTheUserIsTheImages() throws Exception
    {
        final JsonNode statefulSet = OBJECTS.get("StatefulSet/relay");
        final JsonNode template = statefulSet.path("spec").path("template");
        final Map<String, String> podLabels = map(template.path("metadata").path("labels"));
        assertTrue(podLabels.entrySet().containsAll(map(statefulSet.path("spec").path("selector")
            .path("matchLabels")).entrySet()), "the template carries the selector's labels");
        final JsonNode container = template.path("spec").path("containers").get(0);
        final Map<String, Integer> ports = new TreeMap<>();
        container.path("ports").forEach(p -> ports.put(p.path("name").asText(), p.path("containerPort").asInt()));

        for (final String name : List.of("Service/relay", "Service/relay-pods"))
        {
            final JsonNode spec = OBJECTS.get(name).path("spec");
            assertTrue(podLabels.entrySet().containsAll(map(spec.path("selector")).entrySet()), name + " selects the pods");
            for (final JsonNode port : spec.path("ports"))
            {
                assertNotNull(port(port.path("targetPort"), ports), name + " targetPort " + port.path("targetPort"));
            }
        }
        final JsonNode governing = OBJECTS.get("Service/" + statefulSet.path("spec").path("serviceName").asText());
        assertNotNull(governing, "the StatefulSet's serviceName is a Service here");
        assertEquals("None", governing.path("spec").path("clusterIP").asText(), "a headless governing Service");
        assertEquals(25, OBJECTS.get("Service/relay").path("spec").path("ports").get(0).path("port").asInt());

        final JsonNode budget = OBJECTS.get("PodDisruptionBudget/relay").path("spec");
        assertTrue(podLabels.entrySet().containsAll(map(budget.path("selector").path("matchLabels")).entrySet()));
        assertTrue(budget.path("maxUnavailable").asInt() < statefulSet.path("spec").path("replicas").asInt());

        // the image's numeric user (ops/Dockerfile USER uid:gid)
        final String user = ReleaseTarballIT.dockerInstructions(Deployment.repositoryRoot().resolve("ops/Dockerfile"))
            .stream().filter(i -> i[0].equals("USER")).map(i -> i[1].trim()).findFirst().orElseThrow();
        final JsonNode security = template.path("spec").path("securityContext");
        assertTrue(security.path("runAsNonRoot").asBoolean());
        assertEquals(user, security.path("runAsUser").asInt() + ":" + security.path("runAsGroup").asInt());
        assertEquals(security.path("runAsGroup").asInt(), security.path("fsGroup").asInt(), "the claim is writable");
    }

    @Test
    void kustomizationListsEveryFileAndTheReleasesImage() throws Exception
    {
        final JsonNode kustomization = new YAMLMapper().readTree(k8s.resolve("kustomization.yaml").toFile());
        final Set<String> listed = new TreeSet<>(strings(kustomization.path("resources")));
        final Set<String> files = manifests().stream().map(p -> p.getFileName().toString())
            .collect(Collectors.toCollection(TreeSet::new));
        assertEquals(files, listed);
        final JsonNode image = kustomization.path("images").get(0);
        final String containerImage = OBJECTS.get("StatefulSet/relay").path("spec").path("template").path("spec")
            .path("containers").get(0).path("image").asText();
        assertEquals(containerImage, image.path("name").asText());
        final String pom = Files.readString(Deployment.repositoryRoot().resolve("pom.xml"));
        final Matcher version = Pattern.compile("<artifactId>relay-parent</artifactId>\\s*<version>([^<]+)</version>")
            .matcher(pom);
        assertTrue(version.find());
        assertEquals(version.group(1), image.path("newTag").asText(), "the image tag is the release's version");
    }

    private static void keys(final JsonNode node, final String where, final String id)
    {
        assertTrue(node.isObject(), () -> id + ": " + where + " is an object");
        final Set<String> allowed = KEYS.get(where);
        for (final Iterator<String> names = node.fieldNames(); names.hasNext(); )
        {
            final String name = names.next();
            assertTrue(allowed.contains(name), () -> id + ": unknown key " + name + " in " + where);
        }
    }

    private static JsonNode volumeWith(final JsonNode pod, final String type)
    {
        for (final JsonNode volume : pod.path("volumes"))
        {
            if (volume.has(type))
            {
                return volume;
            }
        }
        return fail("no " + type + " volume");
    }

    private static String mountPath(final JsonNode container, final String volume)
    {
        for (final JsonNode mount : container.path("volumeMounts"))
        {
            if (volume.equals(mount.path("name").asText()))
            {
                return mount.path("mountPath").asText();
            }
        }
        return fail("volume " + volume + " is not mounted");
    }

    /** A port given by number or by a container port's name. */
    private static Integer port(final JsonNode port, final Map<String, Integer> named)
    {
        return port.isInt() ? Integer.valueOf(port.asInt()) : named.get(port.asText());
    }

    private static List<String> strings(final JsonNode array)
    {
        final List<String> values = new ArrayList<>();
        array.forEach(v -> values.add(v.asText()));
        return values;
    }

    private static Map<String, String> map(final JsonNode object)
    {
        final Map<String, String> values = new TreeMap<>();
        object.fields().forEachRemaining(e -> values.put(e.getKey(), e.getValue().asText()));
        return values;
    }
}
