"""Forward model of the microscope and its information limit.

Modules: psf (pixel-integrated Gaussian PSF and its derivatives, expected counts); camera
(gain, offset, readout noise, photon conversion, Poisson-approximation likelihood); kde (the
super-resolved kernel density estimate); crlb (Cramer-Rao lower bound of a position).
"""
