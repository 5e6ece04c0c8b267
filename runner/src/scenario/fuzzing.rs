//! The `scenario_file` fuzz target's harness, compiled for tests and
//! `cfg(fuzzing)`: any bytes (read as UTF-8, lossily) parsed and validated
//! as a scenario file give a scenario or errors, never a panic; errors
//! render with their snippets, and every load phase of a scenario that
//! validates passes the engine's plan validation too.

use floodgate_loadgen::plan::Plan;

use super::check;

/// Runs one fuzz input through the parser, validator and renderer.
pub fn fuzz_scenario_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match check("fuzz.toml", &text, &[]) {
        Ok(scenario) => {
            assert!(!scenario.phases.is_empty());
            for phase in &scenario.phases {
                if let Some(input) = phase.plan_input(scenario.target.as_deref(), 0) {
                    if let Err(e) = Plan::validate(input) {
                        panic!("phase {:?} validated but its plan did not: {e}", phase.name);
                    }
                }
            }
        }
        Err(errors) => {
            assert!(!errors.diagnostics.is_empty());
            let rendered = errors.to_string();
            assert!(rendered.starts_with("fuzz.toml:") || rendered.starts_with("--set:"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every committed input of the `scenario_file` fuzz target (the seeds
    /// are the shipped scenarios) replays through the harness on stable.
    #[test]
    fn fuzz_inputs_replay_cleanly() {
        let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
        let mut seen = 0;
        for kind in ["corpus", "regressions"] {
            let Ok(dir) = std::fs::read_dir(fuzz.join(kind).join("scenario_file")) else {
                continue;
            };
            for entry in dir {
                let path = entry.unwrap().path();
                fuzz_scenario_file(&std::fs::read(&path).unwrap());
                seen += 1;
            }
        }
        assert!(seen > 0, "no committed inputs for scenario_file");
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        for input in [
            &b""[..],
            b"\xff\xfe",
            b"[[phase]]\n",
            b"phase = 1",
            b"name = \"x\"\n[[phase]]\nkind = \"steady\"\nrate = \"\xc3\xa9/s\"\n",
            b"name = 1979-05-27\n",
            b"thresholds = [\"\xe2\x82\xac < 1\"]",
            b"[[phase]]\nname='a'\nkind='ramp'\nfrom='1/s'\nto='1/s'\nduration='1s'\n",
        ] {
            fuzz_scenario_file(input);
        }
    }
}
