"""Forward model of the microscope: pixel-integrated PSF, camera noise, kernel density estimates."""
