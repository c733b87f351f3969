//! What each command's page says beyond its flags: examples and exit statuses, one table for
//! the man pages and `--help` alike.

/// The parts of one command's page that clap does not know.
pub struct Page {
    /// The command below `podc` (`build`, `image ls`; `` for `podc` itself).
    pub command: &'static str,
    /// Command lines, each with what it does.
    pub examples: &'static [(&'static str, &'static str)],
    /// Exit statuses, each with when.
    pub exit: &'static [(&'static str, &'static str)],
}

/// The page of `command`, if it has one.
pub fn page(command: &str) -> Option<&'static Page> {
    PAGES.iter().find(|p| p.command == command)
}

const USAGE: (&str, &str) = (
    "2",
    "A usage, I/O or internal error: a flag podc refuses, a file it cannot read or write.",
);
const DONE: (&str, &str) = ("0", "Done.");

pub const PAGES: &[Page] = &[
    Page {
        command: "",
        examples: &[
            ("podc check pod.yaml", "Validate a manifest: errors and warnings with file:line:column."),
            ("podc build pod.yaml -o build", "Write the pod's tree to build/<pod>/: POD.md, its units and its mount plan."),
            ("podc build --check pod.yaml -o build", "In CI: print a diff and exit 1 if build/ is out of date."),
            ("podc install build/web --now", "On a systemd host: install the tree and its host unit, and start the pod."),
            ("podc status web", "The pod and each app: state, exit status, limits, usage."),
            ("podc logs web nginx -f", "Follow one app's journal."),
            ("podc uninstall web", "Stop the pod and remove its units and its tree."),
            ("man 5 podc", "The manifest format: every key, its default and examples."),
        ],
        exit: &[
            ("0", "Success."),
            ("1", "The input is wrong: a manifest with errors (or warnings under --deny-warnings), a tree out of date under build --check, a store that fails image ls --verify. podc launch exits with the pod's own status instead."),
            USAGE,
        ],
    },
    Page {
        command: "build",
        examples: &[
            ("podc build web.yaml -o build", "Compile web.yaml into build/web/ (replaced as a whole, atomically)."),
            ("podc build --check web.yaml -o build", "Write nothing; print how build/web/ differs from what podc would write, and exit 1 if it does."),
            ("podc build --check --message-format json pods/*.yaml", "The same for a CI job that reads JSON: one line per diagnostic and per tree out of date, naming its changed files."),
            ("podc build --cgroup v1 --systemd 252 pods/*.yaml -o build", "Build for a host with cgroup v1 and systemd 252, whatever the manifests say."),
            ("podc build pod.k8s.yaml -o build", "Build a Kubernetes Pod or Deployment as the pod's manifest."),
            ("podc build - --stdin-format toml -o build < pod.toml", "Read the manifest from standard input."),
        ],
        exit: &[
            ("0", "Every tree was written (with --check: every tree is up to date)."),
            ("1", "A manifest has errors, or warnings under --deny-warnings, and nothing was written; or, with --check, a tree is out of date."),
            USAGE,
        ],
    },
    Page {
        command: "check",
        examples: &[
            ("podc check web.yaml", "Print the manifest's errors and warnings, each with file:line:column."),
            ("podc check --deny-warnings pods/*.yaml", "Fail on warnings too."),
            ("podc check --message-format sarif pods/*.yaml > podc.sarif", "One SARIF 2.1.0 log for code-scanning tools."),
        ],
        exit: &[
            ("0", "No errors (warnings are shown, unless --deny-warnings makes them errors)."),
            ("1", "A manifest has errors, or warnings under --deny-warnings."),
            USAGE,
        ],
    },
    Page {
        command: "kube",
        examples: &[
            ("podc kube shop.yaml -o shop.k8s.yaml", "The pod as a Kubernetes Pod."),
            ("podc kube --kind Deployment --image web=registry.example/web:1 shop.yaml", "As a Deployment, naming the image of an app whose image is a path."),
        ],
        exit: &[
            ("0", "The YAML was written."),
            ("1", "A manifest has errors, or warnings under --deny-warnings; nothing was written."),
            USAGE,
        ],
    },
    Page {
        command: "launch",
        examples: &[
            ("podc launch --dry-run /var/lib/podc/web", "Print every step and the systemd-nspawn command line; do nothing."),
            ("podc launch --check /var/lib/podc/web", "Look at this host as the launch would; change nothing."),
            ("podc launch /var/lib/podc/web", "Run the installed tree by hand, as root (what the host unit runs)."),
        ],
        exit: &[
            ("0..255", "The pod's exit status: the first non-zero status of its apps in manifest order, 0 when every app succeeded (137 for an app killed by the OOM killer, 128+N for one killed by signal N)."),
            ("0", "With --check: this host can launch the pod. With --dry-run: the plan was printed."),
            ("2", "Before the pod starts: not root, no systemd-nspawn, not a podc tree, a missing image or volume source; with --check, each problem found (printed)."),
        ],
    },
    Page {
        command: "schema",
        examples: &[(
            "podc schema > pod.schema.json",
            "The JSON Schema of the manifest, for editors (the package has it in /usr/share/podc/pod.schema.json).",
        )],
        exit: &[DONE],
    },
    Page {
        command: "install",
        examples: &[
            ("podc install build/web --now", "Copy the tree to /var/lib/podc/web, write podc-web.service, enable and start it."),
            ("podc install build/web --restart", "Replace a running pod: stop it, swap in the new tree, start it again (its machine id and journal stay)."),
            ("podc install build/web --root /srv/image", "Install into an image being made; print the systemctl commands instead of running them."),
        ],
        exit: &[
            ("0", "Installed (and started, with --now)."),
            ("2", "Not root, no systemd as PID 1, not a tree podc build wrote, a running pod without --restart, or a systemctl command that failed."),
        ],
    },
    Page {
        command: "uninstall",
        examples: &[
            ("podc uninstall web", "Stop and disable the pod, remove its units and its install directory; its persistent volumes stay."),
            ("podc uninstall web --delete-data", "Remove its persistent volumes too."),
            ("podc uninstall web --keep-data", "Keep the install directory (its journal and state)."),
        ],
        exit: &[
            ("0", "Uninstalled."),
            ("2", "Not root, no systemd as PID 1, not installed, a directory podc did not make, or a systemctl command that failed."),
        ],
    },
    Page {
        command: "status",
        examples: &[
            ("podc status web", "The host unit, and each app's state, exit status, limits and usage."),
            ("podc status web --json", "The same as JSON."),
        ],
        exit: &[
            ("0", "The status was shown, whatever the pod's state."),
            ("2", "No systemd as PID 1, or the pod is not installed."),
        ],
    },
    Page {
        command: "logs",
        examples: &[
            ("podc logs web", "The pod's journal: of the running pod, else the one in its installed tree."),
            ("podc logs web nginx -f", "Follow one app's journal."),
            ("podc logs /var/lib/podc/web nginx", "The journal in a tree, such as a pod launched by hand, running or not."),
        ],
        exit: &[
            ("0", "journalctl's status: podc runs journalctl in its place."),
            ("2", "The pod is neither installed nor running, or it has no such app."),
        ],
    },
    Page {
        command: "exec",
        examples: &[
            ("podc exec web nginx -- nginx -t", "Run a command in the running app nginx, in its root, namespaces and cgroups, as its user."),
            ("podc exec web nginx -- sh", "An interactive shell in the app, on a terminal."),
            ("podc exec /var/lib/podc/web nginx -- cat /etc/nginx/nginx.conf", "In a pod launched by hand, named by its tree."),
        ],
        exit: &[
            ("0..255", "The command's status (128 + the signal that ended it)."),
            ("126", "The command cannot be run."),
            ("127", "The app's root has no such command."),
            ("2", "The pod or the app is not running (named), or podc is not root."),
        ],
    },
    Page {
        command: "image",
        examples: &[
            ("podc image pull registry.example/app:1", "Fetch an image into the store and print its manifest digest."),
            ("podc image import app.tar --name registry.example/app:1", "Import a docker save archive or an OCI layout."),
            ("podc image ls", "The named images, each with its whole digest to pin it by."),
        ],
        exit: &[DONE, ("1", "With ls --verify: the store has a problem (printed)."), USAGE],
    },
    Page {
        command: "image pull",
        examples: &[
            ("podc image pull registry.example/app:1", "Pull over HTTPS; print registry.example/app:1: sha256:..., the digest to pin."),
            ("podc image pull --plain-http 127.0.0.1:5000/app:1", "From a registry on this host's loopback, over plain HTTP."),
            ("PODC_REGISTRY_CREDS=user:secret podc image pull registry.example/private:1", "With credentials, where no auth file has them."),
        ],
        exit: &[("0", "Pulled."), ("2", "The pull failed (named: the registry's answer, a digest that does not match, the deadline).")],
    },
    Page {
        command: "image import",
        examples: &[
            ("podc image import ./layout --name registry.example/team/app:1.2", "An OCI image layout directory."),
            ("podc image import app.tar", "A docker save or podman save archive, under its own names."),
        ],
        exit: &[("0", "Imported."), ("2", "The import failed (named); nothing half-imported is left.")],
    },
    Page {
        command: "image ls",
        examples: &[
            ("podc image ls", "Reference, whole manifest digest (REF@sha256:... pins it), size and creation time of each name."),
            ("podc image ls --verify", "Re-hash every blob and check every unpacked root too."),
        ],
        exit: &[("0", "Listed (and, with --verify, the store is sound)."), ("1", "With --verify: the store has a problem (printed)."), USAGE],
    },
    Page {
        command: "image rm",
        examples: &[
            ("podc image rm registry.example/app:1", "Remove the name, then free what nothing uses any more."),
            ("podc image rm --force registry.example/app:1", "Remove a name an installed pod runs by."),
        ],
        exit: &[("0", "Removed."), ("2", "No such name, or an installed pod uses it (without --force).")],
    },
    Page {
        command: "image gc",
        examples: &[("podc image gc", "Remove every image and blob no name and no installed pod uses.")],
        exit: &[DONE, USAGE],
    },
    Page {
        command: "completions",
        examples: &[
            ("podc completions bash > /usr/share/bash-completion/completions/podc", "Bash completion (the package installs it)."),
            ("podc completions zsh > ~/.zfunc/_podc", "Zsh completion, for a directory on $fpath."),
        ],
        exit: &[DONE],
    },
];

/// The examples and exit statuses as `--help` shows them, after the flags.
pub fn help_text(page: &Page) -> String {
    let mut text = String::from("Examples:\n");
    for (line, what) in page.examples {
        text.push_str(&format!("  {line}\n      {what}\n"));
    }
    text.push_str("\nExit status:\n");
    for (status, when) in page.exit {
        text.push_str(&format!("  {status:<6} {when}\n"));
    }
    text.truncate(text.trim_end().len());
    text
}
