/* Unit test of the Trigger and Service loaders (core/config_trigger.c): a valid file with every
 * field, and every error message, exact (file, line, trigger and field). */
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/errors.h"
#include "core/filter.h"
#include "tests/test.h"

static const struct {
    const char *yaml;
    const char *msg;
} cases[] = {
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n",
     "t.yaml:1: Trigger has no metadata.name"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {namespace: x}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n",
     "t.yaml:3: Trigger has no metadata.name"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: T_1}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n",
     "t.yaml:3: Trigger: 'metadata.name' must be a DNS label (lowercase letters, digits and '-', at most 63 characters), not 'T_1'"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t, foo: 1}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n",
     "t.yaml:3: Trigger: unknown field 'metadata.foo'"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t\n  annotations: {ringcast.dev/max-inflight: \"0\"}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n",
     "t.yaml:5: Trigger default/t: 'metadata.annotations.ringcast.dev/max-inflight' must be an integer from 1 to 10000, not '0'"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t\n  annotations: {ringcast.dev/max-inflight: \"10001\"}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n",
     "t.yaml:5: Trigger default/t: 'metadata.annotations.ringcast.dev/max-inflight' must be an integer from 1 to 10000, not '10001'"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t\n  annotations: {ringcast.dev/max-inflight: abc}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n",
     "t.yaml:5: Trigger default/t: 'metadata.annotations.ringcast.dev/max-inflight' must be an integer from 1 to 10000, not 'abc'"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t\n  annotations: {ringcast.dev/start-from: Oldest}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n",
     "t.yaml:5: Trigger default/t: 'metadata.annotations.ringcast.dev/start-from' must be oldest, latest or an RFC 3339 time such as 2026-01-02T15:04:05Z, not 'Oldest'"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t\n  annotations: {ringcast.dev/start-from: \"\"}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n",
     "t.yaml:5: Trigger default/t: 'metadata.annotations.ringcast.dev/start-from' must be oldest, latest or an RFC 3339 time such as 2026-01-02T15:04:05Z, not ''"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t\n  annotations: {ringcast.dev/start-from: yesterday}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n",
     "t.yaml:5: Trigger default/t: 'metadata.annotations.ringcast.dev/start-from' must be oldest, latest or an RFC 3339 time such as 2026-01-02T15:04:05Z, not 'yesterday'"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t\n  annotations: {ringcast.dev/start-from: 2026-13-01T00:00:00Z}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n",
     "t.yaml:5: Trigger default/t: 'metadata.annotations.ringcast.dev/start-from' must be oldest, latest or an RFC 3339 time such as 2026-01-02T15:04:05Z, not '2026-13-01T00:00:00Z'"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t\n  annotations: {ringcast.dev/start-from: 2026-12-04T22:00:00}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n",
     "t.yaml:5: Trigger default/t: 'metadata.annotations.ringcast.dev/start-from' must be oldest, latest or an RFC 3339 time such as 2026-01-02T15:04:05Z, not '2026-12-04T22:00:00'"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t\n  annotations: {ringcast.dev/start-from: 2026-12-04}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n",
     "t.yaml:5: Trigger default/t: 'metadata.annotations.ringcast.dev/start-from' must be oldest, latest or an RFC 3339 time such as 2026-01-02T15:04:05Z, not '2026-12-04'"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t\n  annotations: {ringcast.dev/start-from: 1969-12-31T23:59:59Z}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n",
     "t.yaml:5: Trigger default/t: 'metadata.annotations.ringcast.dev/start-from' must be oldest, latest or an RFC 3339 time such as 2026-01-02T15:04:05Z, not '1969-12-31T23:59:59Z'"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t\n  annotations: {ringcast.dev/start-from: \"2026-12-04T22:00:00Z \"}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n",
     "t.yaml:5: Trigger default/t: 'metadata.annotations.ringcast.dev/start-from' must be oldest, latest or an RFC 3339 time such as 2026-01-02T15:04:05Z, not '2026-12-04T22:00:00Z '"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t\n  annotations: {ringcast.dev/start-from: [oldest]}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n",
     "t.yaml:5: Trigger default/t: 'metadata.annotations.ringcast.dev/start-from' must be oldest, latest or an RFC 3339 time such as 2026-01-02T15:04:05Z, not '(not a scalar)'"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t\n  annotations: {ringcast.dev/start-at: oldest}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n",
     "t.yaml:5: Trigger default/t: unknown annotation 'ringcast.dev/start-at': ringcast reads ringcast.dev/max-inflight, ringcast.dev/rate-limit, ringcast.dev/lag-limit, ringcast.dev/lag-policy and ringcast.dev/start-from on a Trigger, ringcast.dev/storage-type, -directory, -durability, -flush-interval, ringcast.dev/dedup-window and -capacity on a Broker, ringcast.dev/endpoints on a Service"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  subscriber: {uri: http://127.0.0.1:9/}\n",
     "t.yaml:1: Trigger default/t has no spec.broker"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n",
     "t.yaml:1: Trigger default/t has no spec.subscriber"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: Default\n  subscriber: {uri: http://127.0.0.1:9/}\n",
     "t.yaml:5: Trigger default/t: 'spec.broker' must be a broker name (a DNS label), not 'Default'"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: other\n  subscriber: {uri: http://127.0.0.1:9/}\n",
     "t.yaml:1: Trigger default/t: 'spec.broker' names broker 'other', which is not defined in namespace default"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {}\n",
     "t.yaml:6: Trigger default/t: spec.subscriber needs uri or ref"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: ftp://x/}\n",
     "t.yaml:6: Trigger default/t: 'spec.subscriber.uri' \"ftp://x/\": the scheme must be http:// (an absolute URI such as http://127.0.0.1:8080/events)"},
    /* Defect 5 of issue 11: user information, empty ports and the rest of the URI grammar are
     * refused at load, at the line of the URI, and no message shows a password. */
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber:\n    uri: http://user:s3cret@127.0.0.1:9/events\n",
     "t.yaml:7: Trigger default/t: 'spec.subscriber.uri' \"http://***@127.0.0.1:9/events\": user information (user:password@) is not supported: ringcast sends no credentials (use an address that needs none, or a local proxy that adds them)"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: \"http://s3cret@h.example:80/\"}\n",
     "t.yaml:6: Trigger default/t: 'spec.subscriber.uri' \"http://***@h.example:80/\": user information (user:password@) is not supported: ringcast sends no credentials (use an address that needs none, or a local proxy that adds them)"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: \"http://127.0.0.1:/\"}\n",
     "t.yaml:6: Trigger default/t: 'spec.subscriber.uri' \"http://127.0.0.1:/\": empty port after ':' (write a port, or leave out the ':' for 80)"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: \"http://[::1]:\"}\n",
     "t.yaml:6: Trigger default/t: 'spec.subscriber.uri' \"http://[::1]:\": empty port after ':' (write a port, or leave out the ':' for 80)"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: \"http://127.0.0.1:0/\"}\n",
     "t.yaml:6: Trigger default/t: 'spec.subscriber.uri' \"http://127.0.0.1:0/\": the port must be 1-65535"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: \"http://127.0.0.1:080080/\"}\n",
     "t.yaml:6: Trigger default/t: 'spec.subscriber.uri' \"http://127.0.0.1:080080/\": the port must be 1-65535"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: \"http://h:8o/\"}\n",
     "t.yaml:6: Trigger default/t: 'spec.subscriber.uri' \"http://h:8o/\": the port must be a number"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: \"https://127.0.0.1/\"}\n",
     "t.yaml:6: Trigger default/t: 'spec.subscriber.uri' \"https://127.0.0.1/\": https is not supported (use http://)"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: \"http:///x\"}\n",
     "t.yaml:6: Trigger default/t: 'spec.subscriber.uri' \"http:///x\": missing host"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: \"http://a%20b/\"}\n",
     "t.yaml:6: Trigger default/t: 'spec.subscriber.uri' \"http://a%20b/\": \"a%20b\" is neither an IP address nor a host name (letters, digits, '-', '_' and dots)"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: \"http://a..b/\"}\n",
     "t.yaml:6: Trigger default/t: 'spec.subscriber.uri' \"http://a..b/\": \"a..b\" is neither an IP address nor a host name (letters, digits, '-', '_' and dots)"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: \"http://[fe80::zz]/\"}\n",
     "t.yaml:6: Trigger default/t: 'spec.subscriber.uri' \"http://[fe80::zz]/\": \"fe80::zz\" is not an IPv6 address"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: \"http://127.0.0.1?a=1\"}\n",
     "t.yaml:6: Trigger default/t: 'spec.subscriber.uri' \"http://127.0.0.1?a=1\": a query needs a path (write /?...)"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n  delivery:\n    deadLetterSink: {uri: \"http://dls:pw-s3cret@127.0.0.1:9/\"}\n",
     "t.yaml:8: Trigger default/t: spec.delivery.deadLetterSink.uri: \"http://***@127.0.0.1:9/\": user information (user:password@) is not supported: ringcast sends no credentials (use an address that needs none, or a local proxy that adds them)"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n  delivery:\n    deadLetterSink: {uri: \"http://127.0.0.1:/dls\"}\n",
     "t.yaml:8: Trigger default/t: spec.delivery.deadLetterSink.uri: \"http://127.0.0.1:/dls\": empty port after ':' (write a port, or leave out the ':' for 80)"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {ref: {kind: Service, name: s}, uri: \"http://u:s3cret@h/\"}\n",
     "t.yaml:6: Trigger default/t: with spec.subscriber.ref, 'spec.subscriber.uri' must be a path starting with '/', not 'http://***@h/'"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: \"http://a b/\"}\n",
     "t.yaml:6: Trigger default/t: 'spec.subscriber.uri' contains a space or control character"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: [a]}\n",
     "t.yaml:6: Trigger default/t: 'spec.subscriber.uri' must be a non-empty string"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {url: http://x/}\n",
     "t.yaml:6: Trigger default/t: unknown field 'spec.subscriber.url'"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {ref: {kind: Deployment, name: s}}\n",
     "t.yaml:6: Trigger default/t: 'spec.subscriber.ref.kind' must be Service (the only kind ringcast resolves), not 'Deployment'"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {ref: {apiVersion: apps/v1, kind: Service, name: s}}\n",
     "t.yaml:6: Trigger default/t: 'spec.subscriber.ref.apiVersion' must be v1 or serving.knative.dev/v1, not 'apps/v1'"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {ref: {kind: Service}}\n",
     "t.yaml:6: Trigger default/t: 'spec.subscriber.ref' has no name"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {ref: {kind: Service, name: missing}}\n",
     "t.yaml:6: Trigger default/t: 'spec.subscriber.ref' names Service 'missing', which is not defined in namespace default"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {ref: {kind: Service, name: s, namespace: other}}\n",
     "t.yaml:6: Trigger default/t: 'spec.subscriber.ref.namespace' must be the trigger's own (default)"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {ref: {kind: Service, name: s}, uri: path}\n",
     "t.yaml:6: Trigger default/t: with spec.subscriber.ref, 'spec.subscriber.uri' must be a path starting with '/', not 'path'"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {ref: {kind: Service, name: s, foo: 1}}\n",
     "t.yaml:6: Trigger default/t: unknown field 'spec.subscriber.ref.foo'"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n  filter: {attributes: {Type: a}}\n",
     "t.yaml:7: Trigger default/t: spec.filter.attributes: attribute name \"Type\" must match ^[a-z][a-z0-9]*$ (lower-case letters and digits, starting with a letter)"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n  filter: {attributes: [a]}\n",
     "t.yaml:7: Trigger default/t: 'spec.filter.attributes' must be a mapping of attribute names to strings"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n  filter: {attrs: {}}\n",
     "t.yaml:7: Trigger default/t: unknown field 'spec.filter.attrs'"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n  filters: {exact: {type: a}}\n",
     "t.yaml:7: Trigger default/t: 'spec.filters' must be an array of filter objects"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n  filters:\n    - prefx: {type: a}\n",
     "t.yaml:8: Trigger default/t: spec.filters[0]: unknown filter dialect \"prefx\" (expected exact, prefix, suffix, all, any, not or cesql)"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n  filters:\n    - exact: [a]\n",
     "t.yaml:8: Trigger default/t: spec.filters[0].exact: must be a map of attribute names to strings"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n  filters:\n    - exact: {type: a}\n      prefix: {type: b}\n",
     "t.yaml:9: Trigger default/t: spec.filters[0]: sets two dialects (exact and prefix); a filter object sets exactly one"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n  filters:\n    - all: []\n",
     "t.yaml:8: Trigger default/t: spec.filters[0].all: needs at least one filter object"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n  filters:\n    - cesql: \"type = \"\n",
     "t.yaml:8: Trigger default/t: spec.filters[0].cesql: offset 7: expected expression but found end of expression"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n  filters:\n    - cesql: {a: b}\n",
     "t.yaml:8: Trigger default/t: spec.filters[0].cesql: must be a string (a CESQL expression)"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n  filters:\n    - {}\n",
     "t.yaml:8: Trigger default/t: spec.filters[0]: filter object sets no dialect (expected exactly one of exact, prefix, suffix, all, any, not, cesql)"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n  delivery: {retry: -1}\n",
     "t.yaml:7: Trigger default/t: 'spec.delivery.retry' must be an integer from 0 to 1000, not '-1'"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n  delivery: {backoffDelay: P1Y}\n",
     "t.yaml:7: Trigger default/t: spec.delivery.backoffDelay: invalid ISO-8601 duration \"P1Y\": years and months have no fixed length; use days (D) or a time part (PT...)"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n  bogus: 1\n",
     "t.yaml:7: Trigger default/t: unknown field 'spec.bogus'"},
    {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n",
     "t.yaml:8: Trigger default/t is defined twice (first at line 1)"},
    {"apiVersion: v1\nkind: Service\nmetadata: {name: s}\n",
     "t.yaml:1: Service default/s has no spec (a mapping with ports)"},
    {"apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: []}\n",
     "t.yaml:4: Service default/s: 'spec.ports' must be a non-empty array"},
    {"apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 0}]}\n",
     "t.yaml:4: Service default/s: 'spec.ports[0].port' must be an integer from 1 to 65535, not '0'"},
    {"apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{name: http}]}\n",
     "t.yaml:4: Service default/s: 'spec.ports[0]' must be a mapping with 'port'"},
    {"apiVersion: v1\nkind: Service\nspec: {ports: [{port: 80}]}\n",
     "t.yaml:1: Service has no metadata.name"},
    {"apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 81}]}\n",
     "t.yaml:6: Service default/s is defined twice (first at line 1)"},
    {"apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec: {workers: 65}\n",
     "t.yaml:3: 'spec.workers' must be an integer from 0 to 64, not '65'"},
};

static void test_errors(int print)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rc_config_t c;
        char err[RC_CONFIG_ERR_MAX];
        int rc = rc_config_load_string(&c, "t.yaml", cases[i].yaml, strlen(cases[i].yaml), err,
                                       sizeof(err));
        if (print) {
            printf("%s\n", err);
            continue;
        }
        if (rc == 0)
            RC_TEST_FAIL("case %zu accepted, expected \"%s\"", i, cases[i].msg);
        ASSERT_EQ(rc, RC_ECONFIG);
        ASSERT_STR_EQ(err, cases[i].msg);
        ASSERT(strstr(err, "s3cret") == NULL);
        ASSERT(c.triggers == NULL && c.trigger_count == 0);
    }
}

/* ringcast.dev/start-from: oldest, latest, a time with any offset; none is the default. */
static void test_start_from(void)
{
    static const struct {
        const char *value;
        rc_config_start_from_t want;
        int64_t ns;
    } ok[] = {
        {"oldest", RC_START_FROM_OLDEST, 0},
        {"latest", RC_START_FROM_LATEST, 0},
        {"2026-12-04T22:00:00Z", RC_START_FROM_TIME, 1796421600000000000},
        {"2026-12-04T23:00:00.5+01:00", RC_START_FROM_TIME, 1796421600500000000},
        {"1970-01-01T00:00:00Z", RC_START_FROM_TIME, 0},
        {NULL, RC_START_FROM_DEFAULT, 0},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char y[512], err[RC_CONFIG_ERR_MAX];
        snprintf(y, sizeof(y),
                 "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t\n"
                 "  annotations: {%s%s%s}\n"
                 "spec: {broker: default, subscriber: {uri: http://127.0.0.1:9/}}\n",
                 ok[i].value ? "ringcast.dev/start-from: \"" : "other: x",
                 ok[i].value ? ok[i].value : "", ok[i].value ? "\"" : "");
        rc_config_t c;
        if (rc_config_load_string(&c, "t.yaml", y, strlen(y), err, sizeof(err)) != 0)
            RC_TEST_FAIL("start-from '%s' rejected: %s", ok[i].value, err);
        const rc_config_trigger_t *t = rc_config_find_trigger(&c, "default", "t");
        ASSERT(t != NULL);
        ASSERT_EQ(t->start_from, ok[i].want);
        ASSERT_EQ(t->start_from_ns, ok[i].ns);
        rc_config_close(&c);
    }
}

static void test_valid(void)
{
    static const char y[] =
        "apiVersion: ringcast.dev/v1alpha1\nkind: RingcastConfig\nspec: {workers: 3}\n---\n"
        "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: b, namespace: n}\n"
        "spec: {delivery: {retry: 2}}\n---\n"
        "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t1\n"
        "  namespace: n\n  annotations: {ringcast.dev/max-inflight: \"7\", other: x}\n"
        "spec:\n  broker: b\n  filter: {attributes: {type: a}}\n"
        "  filters: [{any: [{exact: {type: a}}, {not: {prefix: {source: /x}}}]}, "
        "{cesql: \"type LIKE 'a%'\"}]\n"
        "  subscriber: {ref: {apiVersion: v1, kind: Service, name: svc}, uri: /events}\n"
        "  delivery: {format: json, deadLetterSink: {uri: http://127.0.0.1:5/d}}\n---\n"
        "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t2, namespace: n}\n"
        "spec: {broker: b, subscriber: {uri: http://127.0.0.1:1234/x}}\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: svc, namespace: n}\n"
        "spec: {ports: [{port: 8099, name: http}, {port: 9}]}\n";
    rc_config_t c;
    char err[RC_CONFIG_ERR_MAX];
    int rc = rc_config_load_string(&c, "t.yaml", y, strlen(y), err, sizeof(err));
    if (rc != 0)
        RC_TEST_FAIL("valid config rejected: %s", err);
    ASSERT_EQ(c.workers, 3);
    ASSERT_EQ(c.trigger_count, 2);
    ASSERT_EQ(c.service_count, 1);
    const rc_config_trigger_t *t = rc_config_find_trigger(&c, "n", "t1");
    ASSERT(t != NULL);
    ASSERT_STR_EQ(t->broker, "b");
    ASSERT_EQ(t->max_inflight, 7);
    ASSERT_STR_EQ(t->subscriber_uri, "http://127.0.0.1:8099/events");
    ASSERT_STR_EQ(t->delivery.format, "json");
    ASSERT(t->filter != NULL);
    char f[256];
    rc_filter_format(t->filter, f, sizeof(f));
    ASSERT(strstr(f, "type") != NULL);
    t = rc_config_find_trigger(&c, "n", "t2");
    ASSERT(t != NULL);
    ASSERT_EQ(t->max_inflight, 100);
    ASSERT_STR_EQ(t->subscriber_uri, "http://127.0.0.1:1234/x");
    ASSERT(rc_config_find_trigger(&c, "default", "t2") == NULL);
    rc_config_close(&c);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--print") == 0) {
        test_errors(1);
        return 0;
    }
    test_valid();
    test_start_from();
    test_errors(0);
    printf("test_config_trigger: ok\n");
    return 0;
}
