"""A plain variational autoencoder (Kingma & Welling 2014) on the generated shapes: `python -m vae.plain.train`."""
