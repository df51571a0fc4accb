# METADATA
# title: Guardrail result helpers
# description: |
#   Builds violation and approval objects from the annotations of the rule
#   that produced them (the rule's own METADATA block, via rego.metadata.chain()).
package guardrails.lib.result

# METADATA
# title: Build a violation or approval object
# description: |
#   chain is rego.metadata.chain() called from a guardrail rule; message is the
#   human-readable reason; action_index is the index into proposal.actions, or
#   null when the result concerns the whole proposal. Missing annotations fall
#   back to defaults so that a result is never dropped. The annotations are read
#   field by field when all are there (the usual case, and the cheaper one).
fail(chain, message, action_index) := {
	"policy": concat(".", array.slice(path, 1, last)),
	"id": id,
	"rule": concat(".", array.concat(["data"], path)),
	"title": title,
	"message": message,
	"severity": severity,
	"action_index": action_index,
} if {
	entry := chain[0]
	path := entry.path
	last := count(path) - 1
	id := entry.annotations.custom.id
	title := entry.annotations.title
	severity := entry.annotations.custom.severity
} else := {
	"policy": concat(".", array.slice(path, 1, count(path) - 1)),
	"id": object.get(annotations, ["custom", "id"], ""),
	"rule": concat(".", array.concat(["data"], path)),
	"title": object.get(annotations, "title", path[count(path) - 1]),
	"message": message,
	"severity": object.get(annotations, ["custom", "severity"], ""),
	"action_index": action_index,
} if {
	path := chain[0].path
	annotations := object.get(chain[0], "annotations", {})
}
