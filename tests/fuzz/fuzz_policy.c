// SPDX-License-Identifier: Apache-2.0
/* libFuzzer: what the controller reads from the API server — YAML/JSON objects
 * as policies, pods, backends — and protobuf-c's decoding of the fleet's
 * messages (fuzz_frames.c fuzzes how the controller handles them). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.pb-c.h"
#include "model.h"
#include "yamljson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Profleet__Fleet__V1__AgentMessage *am;
	Profleet__Fleet__V1__ControllerMessage *cm;
	char err[256];
	cJSON *j;

	/* the same bytes as agent and controller frames */
	am = profleet__fleet__v1__agent_message__unpack(NULL, size, data);
	if (am)
		profleet__fleet__v1__agent_message__free_unpacked(am, NULL);
	cm = profleet__fleet__v1__controller_message__unpack(NULL, size, data);
	if (cm)
		profleet__fleet__v1__controller_message__free_unpacked(cm, NULL);

	j = yaml_to_json((const char *)data, size, err, sizeof(err));
	if (!j)
		j = cJSON_ParseWithLength((const char *)data, size);
	if (j) {
		struct policy p;
		struct pod pod;
		struct backend b;
		struct named_labels nl;

		if (!policy_from_json(j, false, 250, &p))
			policy_free(&p);
		if (!policy_from_json(j, true, 250, &p)) {
			if (!p.invalid_reason[0]) {
				/* a valid selector must match without crashing */
				struct labels l = { 0 };

				(void)selector_matches(&p.pods, &l);
			}
			policy_free(&p);
		}
		if (!pod_from_json(j, &pod)) {
			(void)labels_get(&pod.labels, "app");
			pod_free(&pod);
		}
		if (!backend_from_json(j, &b)) {
			(void)backend_allows(&b, "ns");
			backend_free(&b);
		}
		if (!named_labels_from_json(j, &nl))
			named_labels_free(&nl);
		cJSON_Delete(j);
	}
	return 0;
}
