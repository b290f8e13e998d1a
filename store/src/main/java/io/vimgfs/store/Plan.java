package io.vimgfs.store;

import java.io.IOException;
import java.util.List;

/**
 * What a request makes of the catalog it finds under the store lock: the changes, checked
 * against that catalog. It may install blobs first (a new image's layer, config and manifest),
 * only through the batch, so each is durable and undone if the request fails; it never changes
 * the catalog itself. It runs on whichever thread commits the batch ({@link GroupCommit}).
 */
interface Plan {
    List<Change> changes(Catalog catalog, CommitBatch batch) throws IOException;
}
