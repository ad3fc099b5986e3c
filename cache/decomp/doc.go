// Package decomp turns compressed files and archives into plain data for
// intakefs: the format of a file (Detect, StripSuffix, IntakeDecomp), its
// streamed decompression (NewReader: gzip with any number of members,
// bzip2, xz, legacy lzma, zstd, lz4 frames), its exact size where the
// format records it (KnownSize), random access to the decompressed bytes
// through an on-disk spool shared by all readers (Spool, SpoolSet), and
// the members of zip and tar archives (OpenZip, ScanTar, ListTar,
// Filter).
//
// Damage is never silent: a truncated or corrupt input gives an error
// matching ErrCorrupt (a *CorruptError with the decompressed offset) for
// every read that reaches it, after the bytes before it; errors of the
// underlying input pass through unchanged so that they can be retried.
// A name whose suffix names a compression its bytes are not in fails the
// same way, at offset 0 (Detect), rather than being served raw. A spool
// stays within the room its owner grants (SpoolConfig.Reserve) and stops
// on a full disk: the reads past that fail with ErrSpoolFull.
//
// Libraries: klauspost/compress (gzip members, raw deflate for zip, zstd),
// ulikunitz/xz (xz and lzma), pierrec/lz4 (LZ4 block decoding; the frame
// format is parsed here), compress/bzip2 and archive/zip, archive/tar
// from the standard library.
package decomp
