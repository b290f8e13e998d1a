package io.vimgfs.cli;

import io.vimgfs.fs.Activity;
import io.vimgfs.store.GcReport;
import io.vimgfs.store.ImageStore;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code vimgfs gc [--dry-run]}: delete blobs and staging files nothing references. */
@Command(name = "gc", mixinStandardHelpOptions = true,
        description = "Delete blobs nothing references and staging files left by interrupted uploads.")
final class GcCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Spec
    CommandSpec spec;

    @Option(names = {"-n", "--dry-run"}, description = "List what would be deleted, and why; delete nothing.")
    boolean dryRun;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        try (ImageStore store = main.openStore()) {
            GcReport report = store.collectGarbage(dryRun);
            if (!dryRun) {
                Activity.finished(store.root(), "gc", "", report.removals().size(), report.bytes());
            }
            for (GcReport.Removal removal : report.removals()) {
                out.printf("%s %s (%s): %s%n", dryRun ? "would remove" : "removed",
                        store.root().relativize(removal.file()), ByteSizes.format(removal.bytes()), removal.reason());
            }
            for (GcReport.Kept kept : report.kept()) {
                out.printf("%s %s%n", store.root().relativize(kept.file()), kept.reason());
            }
            out.printf("%s %d files, %s%n", dryRun ? "would free" : "freed", report.removals().size(),
                    ByteSizes.format(report.bytes()));
            return 0;
        }
    }
}
