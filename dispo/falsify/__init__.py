"""`dispo falsify`: re-check every claimed gain of a run under perturbed decoding and scoring.

The paper's own first positives were artefacts: +15.3 HumanEval from truncation at 512 tokens,
+33.9 MCAS from scoring the arms with different judge prompts, an Arc 2 gain that did not
replicate with a new seed, a probe whose CV AUC collapsed on fresh prompts. Each of those is a
check here (dispo.falsify.checks); dispo.falsify.run combines them into a verdict per claim.
falsify reads run directories; it never imports an arc.
"""
