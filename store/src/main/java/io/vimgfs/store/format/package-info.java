/**
 * Recognising disk images before they are stored (SPEC §6): {@link io.vimgfs.store.format.FormatProbe}
 * tells the format and virtual size from the file's own structures, and refuses anything QEMU could
 * be led to read outside the image (a backing file, a VMDK extent, a table pointing past the end).
 * Nothing here writes, names or stores; the store calls {@code FormatProbe.probe} on a staged upload.
 */
package io.vimgfs.store.format;
