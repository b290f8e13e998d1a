package io.vimgfs.store;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.LongConsumer;

/**
 * fsck: re-hashes every blob and checks every reference ({@link StoreChecker}), first bringing
 * index.json up to date so what other tools read is what is checked; and its repair, in order,
 * under the store lock: broken index entries dropped ({@link IndexWriter#replaceRepaired}),
 * corrupt blobs deleted, the catalog reloaded from the repaired index, unsealed blobs sealed,
 * then garbage collected ({@link Maintenance#collectNow}).
 */
final class Repair {
    private final BlobFiles files;
    private final Journal journal;
    private final Snapshots snapshots;
    private final IndexWriter indexWriter;
    private final Maintenance maintenance;

    Repair(BlobFiles files, Journal journal, Snapshots snapshots, IndexWriter indexWriter, Maintenance maintenance) {
        this.files = files;
        this.journal = journal;
        this.snapshots = snapshots;
        this.indexWriter = indexWriter;
        this.maintenance = maintenance;
    }

    /**
     * Re-hashes every blob and checks every reference. With {@code repair}, drops index entries
     * that point at missing or corrupt blobs, deletes corrupt blobs, and collects garbage.
     */
    FsckReport fsck(boolean repair, LongConsumer progress) throws IOException {
        StoreLock.Section<FsckReport> check = () -> {
            if (journal.writable()) {
                indexWriter.writeNow(); // so index.json, which other tools read, is what is checked
            }
            StoreChecker.Result result = new StoreChecker(files).check(Files.readAllBytes(files.index()),
                    journal.read(Journal.START), progress);
            if (!repair || result.report().clean()) {
                return result.report();
            }
            FsckReport report = result.report();
            return new FsckReport(report.blobsChecked(), report.bytesChecked(), report.problems(), repair(result));
        };
        return repair ? snapshots.write("repair it", check) : snapshots.read(check);
    }

    /** Drops broken index entries, deletes corrupt blobs, seals unsealed ones, then collects garbage; says what it did. */
    @GuardedBy("store lock")
    private List<String> repair(StoreChecker.Result result) throws IOException {
        List<String> repairs = new ArrayList<>();
        for (JsonNode dropped : result.broken()) {
            repairs.add("dropped index entry " + describe(dropped) + " (it points at a missing or corrupt blob)");
        }
        if (!result.broken().isEmpty()) {
            indexWriter.replaceRepaired(result.healthy());
        }
        for (Digest corrupt : result.corrupt()) {
            files.delete(corrupt);
            repairs.add("deleted corrupt blob " + corrupt);
        }
        snapshots.reloadWhole();
        Map<Digest, BlobAttributes> layers = BlobAttributes.ofLayers(snapshots.current().catalog());
        for (Digest unsealed : result.unsealed()) {
            files.seal(files.blob(unsealed), Optional.ofNullable(layers.get(unsealed)));
            repairs.add("made blob " + unsealed + " immutable");
        }
        for (GcReport.Removal removal : maintenance.collectNow(false).removals()) {
            repairs.add("removed " + files.root().relativize(removal.file()) + ": " + removal.reason());
        }
        return repairs;
    }

    private static String describe(JsonNode descriptor) {
        String name = descriptor.path("annotations").path(OciLayout.REF_NAME).asText("");
        String digest = descriptor.path("digest").asText();
        return name.isEmpty() ? digest : name + " (" + digest + ")";
    }
}
