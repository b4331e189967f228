"""Sharing bundles: archives for people without ModelKB, S3 buckets and the Hugging Face Hub.

Every way back into a store (``import``, ``clone``) ends in :func:`modelkb.publishing.intake.install_bundle`:
files land in a staging folder inside the store, every artifact's size and sha256 is checked against
``metadata.json``, and only then is the bundle moved into place with one ``os.replace``. Remote
clients (boto3, huggingface_hub) are imported only inside the functions that use them.
"""
