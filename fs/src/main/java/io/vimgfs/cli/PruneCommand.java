package io.vimgfs.cli;

import io.vimgfs.fs.Activity;
import io.vimgfs.store.Durations;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.PrunePolicy;
import io.vimgfs.store.PruneReport;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code vimgfs prune}: remove images by a retention policy, never one a hold, an overlay or a process keeps. */
@Command(name = "prune", mixinStandardHelpOptions = true,
        description = {"Remove images (with their names) chosen by a policy; the options combine with AND.",
            "Never chooses an image that is held, used by an overlay in a held directory or by a stored image,",
            "or open by a process. --dry-run prints every decision with its reason."})
final class PruneCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Spec
    CommandSpec spec;

    @Option(names = {"-n", "--dry-run"}, description = "Print what would be removed and what kept, and why; change nothing.")
    boolean dryRun;

    @Option(names = "--keep-recent", paramLabel = "N", description = "Keep the N most recently placed images of each repository.")
    Integer keepRecent;

    @Option(names = "--unused-for", paramLabel = "DURATION",
            description = "Choose only images not opened or looked up through a mount for this long (30d, 12h).")
    String unusedFor;

    @Option(names = "--until-free", paramLabel = "SIZE|PERCENT",
            description = "Remove the least recently used until the store's filesystem has this free (50G, 20%%).")
    String untilFree;

    @Override
    public Integer call() throws Exception {
        PrunePolicy policy;
        try {
            policy = new PrunePolicy(keepRecent == null ? OptionalInt.empty() : OptionalInt.of(keepRecent),
                    Optional.ofNullable(unusedFor).map(Durations::parse), Optional.ofNullable(untilFree).map(PruneCommand::free));
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
        }
        if (policy.choosesNothingSpecific() || (keepRecent != null && keepRecent < 0)) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "say what to prune: --keep-recent N, --unused-for DURATION and/or --until-free SIZE|PERCENT");
        }
        PrintWriter out = spec.commandLine().getOut();
        try (ImageStore store = main.openStore()) {
            PruneReport report = store.prune(policy, dryRun);
            report.lines().forEach(out::println);
            long bytes = report.removed().stream().mapToLong(i -> i.size()).sum();
            if (!dryRun) {
                Activity.finished(store.root(), "prune", policyWords(), report.removed().size(), bytes);
            }
            out.printf("%s %d images, %s%n", dryRun ? "would remove" : "removed", report.removed().size(),
                    ByteSizes.format(bytes));
            out.flush();
            return 0;
        }
    }

    private String policyWords() {
        List<String> words = new java.util.ArrayList<>();
        if (keepRecent != null) {
            words.add("--keep-recent " + keepRecent);
        }
        if (unusedFor != null) {
            words.add("--unused-for " + unusedFor);
        }
        if (untilFree != null) {
            words.add("--until-free " + untilFree);
        }
        return String.join(" ", words);
    }

    static PrunePolicy.FreeTarget free(String text) {
        if (text.endsWith("%")) {
            try {
                return new PrunePolicy.FreeTarget(Long.parseLong(text.substring(0, text.length() - 1)), true);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--until-free " + text + ": give a size (50G) or a percentage (20%)");
            }
        }
        return new PrunePolicy.FreeTarget(ByteSizes.parse(text), false);
    }
}
