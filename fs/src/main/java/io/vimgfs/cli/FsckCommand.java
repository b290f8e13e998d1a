package io.vimgfs.cli;

import io.vimgfs.store.FsckReport;
import io.vimgfs.store.ImageStore;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code vimgfs fsck [--repair]}: re-hash every blob and check every reference. */
@Command(name = "fsck", mixinStandardHelpOptions = true,
        description = {"Re-hash every blob and check every reference; exit 1 if anything is wrong.",
            "With --repair, drop the names of images whose blobs are missing or corrupt, and say so."})
final class FsckCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Spec
    CommandSpec spec;

    @Option(names = "--repair", description = "Drop what points at missing or corrupt blobs, then collect garbage.")
    boolean repair;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        try (ImageStore store = main.openStore()) {
            FsckReport report;
            try (Progress progress = Progress.start("fsck", store.fsckBytes())) {
                report = store.fsck(repair, progress);
            }
            report.problems().forEach(problem -> out.println("problem: " + problem));
            report.repairs().forEach(repair -> out.println("repaired: " + repair));
            out.printf("checked %d blobs, %s: %s%n", report.blobsChecked(), ByteSizes.format(report.bytesChecked()),
                    report.clean() ? "clean"
                            : report.problems().size() + " problem(s)" + (repair ? ", repaired" : "; run 'vimgfs fsck --repair'"));
            return report.clean() || repair ? 0 : 1;
        }
    }
}
