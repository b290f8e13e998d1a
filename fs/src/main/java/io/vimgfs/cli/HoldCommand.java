package io.vimgfs.cli;

import io.vimgfs.store.Digest;
import io.vimgfs.store.Hold;
import io.vimgfs.store.ImageStore;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code vimgfs hold add|rm|ls}: keep images that have no names, one by one or by the overlays that use them. */
@Command(name = "hold", mixinStandardHelpOptions = true,
        description = "Keep images even without names: one image, or every image the qcow2 files under a directory use.",
        subcommands = {HoldCommand.Add.class, HoldCommand.Remove.class, HoldCommand.ListHolds.class})
final class HoldCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getErr());
        return 2;
    }

    /** REF or --overlays DIR, exactly one. */
    static final class Subject {
        @Parameters(index = "0", paramLabel = "REF", arity = "1", description = "A name, sha256:<hex>, or a unique prefix.")
        String reference;

        @Option(names = "--overlays", paramLabel = "DIR", required = true,
                description = "A directory of qcow2 overlays (searched recursively, whole backing chains).")
        Path overlays;
    }

    @Command(name = "add", mixinStandardHelpOptions = true, description = "Hold an image, or a directory of overlays.")
    static final class Add implements Callable<Integer> {
        @ParentCommand
        HoldCommand hold;

        @ArgGroup(exclusive = true, multiplicity = "1")
        Subject subject;

        @Option(names = "--why", paramLabel = "TEXT", defaultValue = "", description = "Why (shown by hold ls, prune and gc).")
        String why;

        @Override
        public Integer call() throws Exception {
            try (ImageStore store = hold.main.openStore()) {
                Hold made = subject.overlays != null ? store.holdOverlays(subject.overlays, why)
                        : store.hold(subject.reference, why);
                hold.spec.commandLine().getOut().printf("holding %s%n", made.subject());
                return 0;
            }
        }
    }

    @Command(name = "rm", mixinStandardHelpOptions = true,
            description = "End a hold; images nothing else keeps go now.")
    static final class Remove implements Callable<Integer> {
        @ParentCommand
        HoldCommand hold;

        @ArgGroup(exclusive = true, multiplicity = "1")
        Subject subject;

        @Override
        public Integer call() throws Exception {
            try (ImageStore store = hold.main.openStore()) {
                if (subject.overlays != null) {
                    store.releaseOverlays(subject.overlays);
                } else {
                    store.release(subject.reference);
                }
                hold.spec.commandLine().getOut().printf("released %s%n",
                        subject.overlays != null ? subject.overlays : subject.reference);
                return 0;
            }
        }
    }

    @Command(name = "ls", mixinStandardHelpOptions = true,
            description = "Each hold, its reason, when it was made, and the images it keeps now.")
    static final class ListHolds implements Callable<Integer> {
        @ParentCommand
        HoldCommand hold;

        @Override
        public Integer call() throws Exception {
            PrintWriter out = hold.spec.commandLine().getOut();
            try (ImageStore store = hold.main.openStore()) {
                Map<Hold, List<Digest>> held = store.heldNow();
                List<String[]> rows = new java.util.ArrayList<>();
                rows.add(new String[] {"HOLD", "WHY", "MADE", "KEEPS"});
                for (Map.Entry<Hold, List<Digest>> entry : held.entrySet()) {
                    Hold h = entry.getKey();
                    String keeps = entry.getValue().isEmpty() ? "-"
                            : entry.getValue().stream().map(d -> describe(store, d)).collect(Collectors.joining(", "));
                    rows.add(new String[] {h.subject(), h.why().isEmpty() ? "-" : h.why(),
                        h.made().equals(Instant.EPOCH) ? "-" : h.made().toString(), keeps});
                }
                Table.print(out, rows);
                out.flush();
                return 0;
            }
        }

        private static String describe(ImageStore store, Digest digest) {
            List<String> names = store.image(digest).map(i -> i.names().stream().map(Object::toString).toList())
                    .orElse(List.of());
            return digest.shortHex() + (names.isEmpty() ? "" : " (" + String.join(",", names) + ")");
        }
    }
}
